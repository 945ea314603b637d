"""The parts of the erasure barrier inside one process: the key cache's units and forgetting,
the session cache's pinned-key tags, and SubjectCaches dropping a subject everywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.consumers.compliance.barrier import BarrierError, LocalBarrier, SubjectCaches
from mcp_ledger.consumers.mapping import to_domain, to_new_events
from mcp_ledger.consumers.session_cache import SessionCache
from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.ports import DataKey, KeyDestroyedError
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent, SessionNoteWritten, SessionOpened
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine

STREAM = "tenant:acme:session:sess-0001"


class CountingKeys:
    """The SQL key store, counting the lookups that reach it and able to hold one."""

    def __init__(self, inner: SqlKeyStore) -> None:
        self.inner = inner
        self.lookups = 0
        self.hold: asyncio.Event | None = None

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        self.lookups += 1
        return await self.inner.active_key(tenant, subject)

    async def current_key(self, tenant: str, subject: str) -> DataKey | None:
        self.lookups += 1
        return await self.inner.current_key(tenant, subject)

    async def key(self, tenant: str, subject: str, key_id: str) -> DataKey:
        self.lookups += 1
        found = await self.inner.key(tenant, subject, key_id)
        if self.hold is not None:
            await self.hold.wait()
        return found

    async def destroy(self, tenant: str, subject: str) -> int:
        return await self.inner.destroy(tenant, subject)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
async def counting(tmp_path: Path) -> AsyncIterator[CountingKeys]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await upgrade_to_head_async(url)
    keys = CountingKeys(SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True))
    yield keys
    await keys.close()


async def test_dropping_a_subject_empties_every_cache_of_them_and_no_other(counting: CountingKeys) -> None:
    cache, caches = CachingKeyStore(counting, ttl=60), SubjectCaches()
    caches.register(cache)
    await cache.active_key("acme", "alice")
    await cache.active_key("acme", "bob")
    before = counting.lookups

    assert await LocalBarrier(caches).cross("acme", "alice", "e1") == 1

    await cache.active_key("acme", "bob")
    assert counting.lookups == before  # bob is still cached
    await cache.active_key("acme", "alice")
    assert counting.lookups == before + 1  # alice comes from the store again


async def test_a_drop_waits_for_the_subjects_projections_in_flight() -> None:
    caches, release = SubjectCaches(), asyncio.Event()
    entered = asyncio.Event()

    async def projecting() -> None:
        async with caches.writing("acme", "alice"):
            entered.set()
            await release.wait()

    projection = asyncio.create_task(projecting())
    await entered.wait()
    await asyncio.wait_for(caches.drop("acme", "bob"), 1)  # another subject: at once
    dropping = asyncio.create_task(caches.drop("acme", "alice"))
    await asyncio.sleep(0.05)
    assert not dropping.done()
    release.set()
    await asyncio.wait_for(dropping, 1)
    await projection


async def test_a_drop_gives_up_when_a_projection_of_the_subject_never_ends() -> None:
    caches, never = SubjectCaches(drain_timeout=0.1), asyncio.Event()

    async def stuck() -> None:
        async with caches.writing("acme", "alice"):
            await never.wait()

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0)
    with pytest.raises(BarrierError, match="kept running"):
        await caches.drop("acme", "alice")
    task.cancel()


async def test_a_lookup_that_ran_while_the_subject_was_forgotten_is_not_kept(counting: CountingKeys) -> None:
    cache = CachingKeyStore(counting, ttl=60)
    alice = await counting.inner.active_key("acme", "alice")
    counting.hold = asyncio.Event()
    lookup = asyncio.create_task(cache.key("acme", "alice", alice.key_id))
    await asyncio.sleep(0.05)
    cache.forget_subject("acme", "alice")  # the erasure barrier, while the lookup is in flight
    counting.hold.set()
    assert await lookup == alice
    counting.hold = None
    before = counting.lookups
    await cache.key("acme", "alice", alice.key_id)
    assert counting.lookups == before + 1


async def test_learning_the_active_key_drops_the_subjects_other_cached_keys(counting: CountingKeys) -> None:
    cache = CachingKeyStore(counting, ttl=60)
    old = await counting.inner.active_key("acme", "alice")
    assert await cache.key("acme", "alice", old.key_id) == old  # cached by id only
    await counting.inner.destroy("acme", "alice")  # another process erased alice…
    new = await counting.inner.active_key("acme", "alice")  # …and she came back

    assert await cache.active_key("acme", "alice") == new
    with pytest.raises(KeyDestroyedError):
        await cache.key("acme", "alice", old.key_id)


async def test_a_unit_seals_with_the_key_it_met_first_even_once_destroyed(counting: CountingKeys) -> None:
    cache = CachingKeyStore(counting, ttl=0)
    first = await cache.active_key("acme", "alice")
    with cache.unit():
        assert await cache.pin("acme", "alice") == first.key_id
        await counting.inner.destroy("acme", "alice")  # the shred, mid-unit
        assert await cache.active_key("acme", "alice") == first
        with cache.unit():  # nested: still the outer unit
            assert await cache.active_key("acme", "alice") == first
    after = await cache.active_key("acme", "alice")
    assert after.key_id != first.key_id


async def test_a_unit_that_met_no_live_key_creates_one_and_keeps_it(counting: CountingKeys) -> None:
    cache = CachingKeyStore(counting, ttl=0)
    with cache.unit():
        assert await cache.pin("acme", "carol") is None
        created = await cache.active_key("acme", "carol")
        assert await cache.active_key("acme", "carol") == created
        assert await cache.pin("acme", "carol") == created.key_id


async def test_with_caching_off_every_lookup_reaches_the_store(counting: CountingKeys) -> None:
    cache = CachingKeyStore(counting, ttl=60)
    cache.set_caching(False)
    await cache.active_key("acme", "alice")
    before = counting.lookups
    await cache.active_key("acme", "alice")
    assert counting.lookups == before + 1


async def _opened(stored: StoredEvent) -> DomainEvent:
    return to_domain(stored)


async def _session(store: SqlEventStore, *notes: str) -> None:
    alice = CallTool(tenant="acme", subject="alice", session_id="sess-0001", tool_name="note_set")
    events: list[DomainEvent] = [
        SessionOpened(session_id="sess-0001", tenant="acme", subject="alice", opened_at=1.0)
    ]
    events += [SessionNoteWritten(key=note, value=note) for note in notes]
    await store.append(STREAM, 0, to_new_events(alice, events))


async def test_a_cached_session_is_replayed_when_its_caller_pinned_another_key(store: SqlEventStore) -> None:
    reads: list[int] = []

    async def counting(stored: StoredEvent) -> DomainEvent:
        reads.append(stored.version)
        return to_domain(stored)

    cache = SessionCache(store, counting, max_age=60)
    await _session(store, "k")
    await cache.load(STREAM, key_id="key-1")
    await cache.load(STREAM, key_id="key-1")
    assert reads == [1, 2]  # the second load was served from the cache
    await cache.load(STREAM, key_id="key-2")  # the subject was erased and got a new key
    assert reads == [1, 2, 1, 2]


async def test_forgetting_a_subject_drops_the_sessions_holding_their_data(store: SqlEventStore) -> None:
    reads: list[str] = []

    async def counting(stored: StoredEvent) -> DomainEvent:
        reads.append(stored.stream_id)
        return to_domain(stored)

    cache = SessionCache(store, counting, max_age=60)
    await _session(store, "k")
    await cache.load(STREAM)
    cache.forget_subject("acme", "bob")
    await cache.load(STREAM)
    assert len(reads) == 2  # still cached: bob's data is not in it
    cache.forget_subject("acme", "alice")
    await cache.load(STREAM)
    assert len(reads) == 4
