"""The worker's session cache: never stale, never shared between commands, bounded in age."""

from __future__ import annotations

from mcp_ledger.consumers.mapping import to_domain, to_new_events
from mcp_ledger.consumers.session_cache import SessionCache
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent, SessionNoteWritten, SessionOpened
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore

STREAM = "tenant:acme:session:sess-0001"


async def _domain(stored: StoredEvent) -> DomainEvent:
    return to_domain(stored)


async def _append(store: SqlEventStore, expected: int, *events: DomainEvent) -> None:
    command = CallTool(tenant="acme", subject="alice", session_id="sess-0001", tool_name="note_set")
    await store.append(STREAM, expected, to_new_events(command, list(events)))


async def test_a_cached_session_catches_up_with_what_was_appended_since(store: SqlEventStore) -> None:
    cache = SessionCache(store, _domain)
    await _append(
        store, 0, SessionOpened(session_id="sess-0001", tenant="acme", subject="alice", opened_at=1.0)
    )
    first = await cache.load(STREAM)
    await _append(store, 1, SessionNoteWritten(key="k", value="v"))
    second = await cache.load(STREAM)
    assert (first.version, second.version) == (1, 2)
    assert second.notes == {"k": "v"}
    assert first.notes == {}


async def test_each_load_is_a_private_copy(store: SqlEventStore) -> None:
    cache = SessionCache(store, _domain)
    await _append(
        store, 0, SessionOpened(session_id="sess-0001", tenant="acme", subject="alice", opened_at=1.0)
    )
    one, two = await cache.load(STREAM), await cache.load(STREAM)
    one.apply(SessionNoteWritten(key="only-here", value=1))
    assert "only-here" not in two.notes
    assert "only-here" not in (await cache.load(STREAM)).notes


async def test_an_entry_older_than_max_age_is_replayed_from_the_start(store: SqlEventStore) -> None:
    now = [0.0]
    reads: list[int] = []

    async def counting(stored: StoredEvent) -> DomainEvent:
        reads.append(stored.version)
        return to_domain(stored)

    cache = SessionCache(store, counting, max_age=5.0, clock=lambda: now[0])
    await _append(
        store, 0, SessionOpened(session_id="sess-0001", tenant="acme", subject="alice", opened_at=1.0)
    )
    await cache.load(STREAM)
    await cache.load(STREAM)
    now[0] = 6.0
    await cache.load(STREAM)
    assert reads == [1, 1]  # the first load and the one after expiry; the cached load read nothing
