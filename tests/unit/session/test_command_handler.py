"""The command handler on the SQLite event store: once-only recording, races, failures."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.mapping import command_key, to_new_events
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS, ToolInvocation, ToolOutcome
from mcp_ledger.domain.commands import CallTool, CommandEnvelope, new_session_id
from mcp_ledger.domain.events import SessionNoteWritten
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore


class Published:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    async def __call__(self, events: Sequence[StoredEvent]) -> None:
        self.events.extend(events)


def _handler(store: EventStore, published: Published, **runners: object) -> CommandHandler:
    return CommandHandler(store, builtin_catalog(), {**BUILTIN_RUNNERS, **runners}, published)  # type: ignore[dict-item]


def _call(tool: str, session_id: str | None = None, **arguments: object) -> CallTool:
    return CallTool(
        tenant="acme", subject="alice", session_id=session_id, tool_name=tool, arguments=arguments
    )


async def _open(handler: CommandHandler) -> str:
    command = _call("session_open", new_session_id())
    await handler.handle(command)
    assert command.session_id is not None
    return command.session_id


async def test_a_redelivered_command_is_recorded_once(store: SqlEventStore) -> None:
    published = Published()
    handler = _handler(store, published)
    session_id = await _open(handler)
    command = _call("note_set", session_id, key="k", value=1)
    first = await handler.handle(command)
    again = await handler.handle(command)
    assert not first.duplicate
    assert again.duplicate
    assert [e.position for e in again.events] == [e.position for e in first.events]
    assert len(await store.events_for_command(command_key(command))) == 3
    assert [e.event_type for e in published.events].count("SessionNoteWritten") == 1


async def test_a_concurrent_writer_makes_the_handler_decide_again(store: SqlEventStore) -> None:
    published = Published()
    session_id = await _open(_handler(store, published))
    stream = _call("echo", session_id, text="x").stream_id

    async def racing_note_set(call: ToolInvocation) -> ToolOutcome:
        if not call.session.notes:  # first attempt: another writer gets in first
            intruder = _call("note_set", session_id, key="other", value=0)
            records = to_new_events(intruder, [SessionNoteWritten(key="other", value=0)])
            await store.append(stream, call.session.version, records, command=command_key(intruder))
        return await BUILTIN_RUNNERS["note_set"](call)

    handler = _handler(store, published, note_set=racing_note_set)
    result = await handler.handle(_call("note_set", session_id, key="mine", value=1))
    assert not result.duplicate
    notes = await handler.handle(_call("note_list", session_id))
    assert notes.events[-1].data["structured"] == {"notes": {"other": 0, "mine": 1}}


async def test_a_crashing_tool_is_recorded_as_a_failure(store: SqlEventStore) -> None:
    async def broken(call: ToolInvocation) -> ToolOutcome:
        raise RuntimeError("disk on fire")

    handler = _handler(store, Published(), echo=broken)
    result = await handler.handle(_call("echo", text="x"))
    assert [e.event_type for e in result.events] == ["ToolCalled", "ToolFailed"]
    assert result.events[-1].data["message"] == "RuntimeError: disk on fire"


async def test_arguments_are_checked_again_by_the_worker(store: SqlEventStore) -> None:
    result = await _handler(store, Published()).handle(_call("echo", text=5))
    assert result.events[-1].data["error_code"] == "invalid_arguments"


async def test_a_foreign_session_is_refused_in_the_callers_own_stream(store: SqlEventStore) -> None:
    handler = _handler(store, Published())
    session_id = await _open(handler)
    foreign = CallTool(tenant="acme", subject="mallory", session_id=session_id, tool_name="note_list")
    result = await handler.handle(foreign)
    assert result.events[0].stream_id == f"tenant:acme:call:{foreign.command_id}"
    assert result.events[-1].data["error_code"] == "unknown_session"
    session_events = await store.read_stream(_call("echo", session_id, text="").stream_id)
    assert all(e.metadata["subject"] == "alice" for e in session_events)


async def test_a_malformed_message_is_dropped_without_writing(store: SqlEventStore) -> None:
    handler = _handler(store, Published())
    await handler.handle_payload(b"{not json")
    assert await store.last_position() == 0


async def test_commands_round_trip_through_their_wire_form(store: SqlEventStore) -> None:
    published = Published()
    command = _call("echo", text="wire")
    await _handler(store, published).handle_payload(
        CommandEnvelope(command=command).model_dump_json().encode()
    )
    assert published.events[-1].data["structured"] == {"text": "wire"}
