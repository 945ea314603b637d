"""The Session aggregate, the decisions around it and the event mapper."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.events import (
    UPCASTERS,
    DomainEvent,
    SessionNoteDeleted,
    SessionNoteWritten,
    SessionOpened,
    ToolSucceeded,
    UnknownEventError,
    from_record,
    to_record,
)
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.session.decisions import admit, opening_events, outcome_events
from mcp_ledger.domain.streams import parse_session_stream, session_stream
from mcp_ledger.domain.tools import builtin_catalog

CATALOG = builtin_catalog()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
note_ops = st.lists(
    st.tuples(st.sampled_from(["set", "delete"]), st.sampled_from(["a", "b", "c"]), json_values), max_size=30
)


def _call(tool: str, session_id: str | None, subject: str = "alice", **arguments: Any) -> CallTool:
    return CallTool(
        tenant="acme", subject=subject, session_id=session_id, tool_name=tool, arguments=arguments
    )


def _opened(session_id: str, subject: str = "alice") -> Session:
    command = _call("session_open", session_id, subject)
    return Session.replay(command.stream_id, opening_events(command))


@given(note_ops)
def test_replaying_note_events_gives_the_last_write_of_each_key(ops: list[tuple[str, str, Any]]) -> None:
    events: list[DomainEvent] = [SessionOpened(session_id="s" * 10, tenant="t", subject="u", opened_at=0.0)]
    expected: dict[str, Any] = {}
    for op, key, value in ops:
        if op == "set":
            events.append(SessionNoteWritten(key=key, value=value))
            expected[key] = value
        else:
            events.append(SessionNoteDeleted(key=key))
            expected.pop(key, None)
    session = Session.replay("stream", events)
    assert session.notes == expected
    assert session.version == len(events)


@given(note_ops)
def test_every_event_survives_the_record_round_trip(ops: list[tuple[str, str, Any]]) -> None:
    for _, key, value in ops:
        event = SessionNoteWritten(key=key, value=value)
        assert from_record(*to_record(event)) == event


def test_an_older_schema_version_is_upcast_before_parsing() -> None:
    def lift(data: dict[str, Any]) -> dict[str, Any]:
        text = data.pop("text")
        return {**data, "content": [{"type": "text", "text": text}]}

    UPCASTERS[("ToolSucceeded", 0)] = lift
    try:
        old = {"command_id": "c", "tool_name": "echo", "text": "hi"}
        event = from_record("ToolSucceeded", 0, dict(old))
        assert isinstance(event, ToolSucceeded)
        assert event.content == [{"type": "text", "text": "hi"}]
    finally:
        del UPCASTERS[("ToolSucceeded", 0)]


def test_an_unknown_event_type_is_refused_by_the_mapper() -> None:
    with pytest.raises(UnknownEventError, match="NoSuchThing"):
        from_record("NoSuchThing", 1, {})


def test_a_session_belongs_only_to_its_tenant_and_subject() -> None:
    session = _opened(new_session_id())
    assert session.is_owned_by("acme", "alice")
    assert not session.is_owned_by("acme", "bob")
    assert not session.is_owned_by("other", "alice")


def test_unknown_tools_are_refused_outside_any_session() -> None:
    refusal = admit(_call("rm_rf", None), None, Session("x"))
    assert refusal is not None
    assert refusal.error_code == "unknown_tool"
    assert not refusal.in_session


def test_note_tools_need_a_session() -> None:
    refusal = admit(_call("note_get", None, key="k"), CATALOG["note_get"], Session("x"))
    assert refusal is not None
    assert refusal.error_code == "no_session"


def test_a_foreign_session_looks_exactly_like_a_missing_one() -> None:
    sid = new_session_id()
    foreign = admit(_call("note_get", sid, "mallory", key="k"), CATALOG["note_get"], _opened(sid))
    missing = admit(_call("note_get", sid, "alice", key="k"), CATALOG["note_get"], Session("x"))
    assert foreign == missing
    assert foreign is not None
    assert foreign.error_code == "unknown_session"


def test_the_owner_may_use_their_session() -> None:
    sid = new_session_id()
    assert admit(_call("note_get", sid, key="k"), CATALOG["note_get"], _opened(sid)) is None


def test_opening_an_existing_session_is_refused() -> None:
    sid = new_session_id()
    refusal = admit(_call("session_open", sid), CATALOG["session_open"], _opened(sid))
    assert refusal is not None
    assert refusal.error_code == "session_conflict"


def test_a_successful_call_records_call_effects_then_outcome() -> None:
    command = _call("note_set", new_session_id(), key="k", value=1)
    effect = SessionNoteWritten(key="k", value=1)
    events = outcome_events(command, [effect], [{"type": "text", "text": "ok"}], {"key": "k"})
    assert [type(e).__name__ for e in events] == ["ToolCalled", "SessionNoteWritten", "ToolSucceeded"]
    assert events[-1].terminal


def test_a_failed_call_drops_the_effects() -> None:
    command = _call("note_set", new_session_id(), key="k", value=1)
    events = outcome_events(command, [SessionNoteWritten(key="k", value=1)], [], None, ("tool_error", "boom"))
    assert [type(e).__name__ for e in events] == ["ToolCalled", "ToolFailed"]


def test_session_stream_names_parse_back() -> None:
    assert parse_session_stream(session_stream("acme", "abcdefgh")) == ("acme", "abcdefgh")
    assert parse_session_stream("tenant:acme:call:123") is None


def test_commands_refuse_tenants_that_could_forge_stream_names() -> None:
    with pytest.raises(ValueError, match="pattern"):
        CallTool(tenant="a:session:b", subject="s", tool_name="echo")
