"""The session projection: folding events, checkpoints, and agreement with the aggregate."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_ledger.domain.events import (
    DomainEvent,
    SessionNoteDeleted,
    SessionNoteWritten,
    SessionOpened,
    to_record,
)
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.streams import session_stream
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.sessions.memory import MemorySessionViewStore

ops = st.lists(st.tuples(st.booleans(), st.sampled_from("abc"), st.integers(0, 9)), max_size=25)


def _stored(events: list[DomainEvent], stream: str) -> list[StoredEvent]:
    out = []
    for index, event in enumerate(events, start=1):
        event_type, version, data = to_record(event)
        out.append(StoredEvent(index * 3, stream, index, event_type, version, data, {}, datetime.now(UTC)))
    return out


def _events(session_id: str, changes: list[tuple[bool, str, int]]) -> list[DomainEvent]:
    events: list[DomainEvent] = [SessionOpened(session_id=session_id, tenant="t", subject="u", opened_at=1.0)]
    for write, key, value in changes:
        events.append(SessionNoteWritten(key=key, value=value) if write else SessionNoteDeleted(key=key))
    return events


@settings(max_examples=40)
@given(ops, st.integers(min_value=0, max_value=3))
async def test_the_projection_agrees_with_the_aggregate_even_with_redeliveries(
    changes: list[tuple[bool, str, int]], redeliver_every: int
) -> None:
    stream = session_stream("t", "session-1")
    events = _events("session-1", changes)
    stored = _stored(events, stream)
    projector = SessionProjector(MemorySessionViewStore())
    for index, record in enumerate(stored):
        await projector.apply(record)
        if redeliver_every and index % redeliver_every == 0:
            assert not await projector.apply(record)
    view = await projector._views.get("t", "session-1")
    assert view is not None
    assert view.notes == Session.replay(stream, events).notes
    assert view.last_position == stored[-1].position


async def test_events_of_other_streams_are_ignored() -> None:
    projector = SessionProjector(MemorySessionViewStore())
    record = _stored(_events("s", []), "tenant:t:call:123")[0]
    assert not await projector.apply(record)


async def test_the_subject_index_lists_the_subjects_sessions() -> None:
    views = MemorySessionViewStore()
    projector = SessionProjector(views)
    for sid in ("s1", "s2"):
        for record in _stored(_events(sid, []), session_stream("t", sid)):
            await projector.apply(record)
    assert await views.sessions_of("t", "u") == ["s1", "s2"]
    assert await views.sessions_of("t", "someone-else") == []
