"""The EventStore contract: the behaviour every event store adapter must show.

Owns the shared tests: EventStoreContract, written against the port only, and
SqlEventStoreContract, which adds what only SqlEventStore shows (writers that raced past its
checks, the migrated schema) on any database it supports. Does not own databases: a subclass
named Test<Adapter> provides them through fixtures. Every test names its streams and commands
with a fresh prefix and only looks at those, so a database may be shared between tests and runs.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mcp_ledger.eventstore.migrations import alembic_config, upgrade_to_head_async
from mcp_ledger.eventstore.ports import (
    AppendResult,
    CommandKey,
    ConcurrencyError,
    EventStore,
    NewEvent,
    StoredEvent,
)
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine, open_event_store
from mcp_ledger.eventstore.tables import metadata

# Generous: SQLite writers queue on a busy timeout; nothing here should take close to this.
WAIT_SECONDS = 30.0
# Big enough to hold every pending row a test run leaves behind (tests tidy up their own).
OUTBOX_WINDOW = 10_000
T = TypeVar("T")


async def bounded(awaitable: Awaitable[T]) -> T:
    """Await with a deadline, so a hung store fails the test instead of the run."""
    async with asyncio.timeout(WAIT_SECONDS):
        return await awaitable


def issued(command_id: str, tenant: str = "acme", subject: str = "alice") -> CommandKey:
    """The key of a command of this id, issued for alice@acme unless said otherwise."""
    return CommandKey(tenant, subject, command_id)


def noted(*values: int) -> list[NewEvent]:
    """Small events whose payloads tell them apart."""
    return [NewEvent("Noted", {"n": value}) for value in values]


async def everything_after(store: EventStore, position: int, page: int = 100) -> list[StoredEvent]:
    """read_all from `position` to the end, a page at a time."""
    found: list[StoredEvent] = []
    while batch := await store.read_all(position, limit=page):
        found.extend(batch)
        position = batch[-1].position
    return found


async def tail(store: EventStore, mark: int, seen: list[StoredEvent]) -> int:
    """One step of a subscriber that reads on from the last position it saw."""
    batch = await store.read_all(mark)
    seen.extend(batch)
    return batch[-1].position if batch else mark


def owned(stored: Sequence[StoredEvent], prefix: str) -> list[StoredEvent]:
    """The events of this test's streams only."""
    return [item for item in stored if item.stream_id.startswith(prefix)]


class EventStoreContract:
    """Tests every EventStore must pass; subclass as Test<Adapter> and override the fixtures."""

    @pytest.fixture
    async def store(self) -> EventStore:
        """A store on a migrated database, closed after the test."""
        raise NotImplementedError("an adapter's test class provides the store")

    @pytest.fixture
    async def rival(self) -> EventStore:
        """A second store on the same database as `store`, with its own connections."""
        raise NotImplementedError("an adapter's test class provides the rival store")

    @pytest.fixture
    def prefix(self) -> str:
        """Names this test's streams and commands."""
        return f"c{uuid.uuid4().hex[:12]}-"

    @pytest.fixture(autouse=True)
    async def tidy_outbox(self, store: EventStore, prefix: str) -> AsyncIterator[None]:
        """Publish what the test left in the outbox, so a shared database's outbox stays short."""
        start = await store.last_position()
        yield
        leftovers = owned(await everything_after(store, start), prefix)
        await store.mark_published([item.position for item in leftovers])

    async def test_appended_events_read_back_as_recorded(self, store: EventStore, prefix: str) -> None:
        stream = f"{prefix}session"
        new = [
            NewEvent("SessionOpened", {"subject": "alice", "tags": ["a", "b"]}),
            NewEvent("ToolCalled", {"tool": "search", "args": {"q": "x", "n": 3}}, schema_version=2),
            NewEvent("ToolAnswered", {"ok": True, "value": None}, metadata={"trace": "t-1"}),
        ]

        result = await store.append(stream, 0, new)
        read = await store.read_stream(stream)

        assert read == list(result.events)
        assert not result.duplicate
        assert [(e.event_type, e.data, e.schema_version, e.metadata) for e in read] == [
            (n.event_type, n.data, n.schema_version, n.metadata) for n in new
        ]
        assert all(e.stream_id == stream for e in read)
        assert all(e.recorded_at.utcoffset() == timedelta(0) for e in read)

    async def test_versions_count_from_one_and_continue_across_appends(
        self, store: EventStore, prefix: str
    ) -> None:
        stream = f"{prefix}session"

        first = await store.append(stream, 0, noted(1, 2))
        second = await store.append(stream, 2, noted(3))

        assert [e.version for e in first.events + second.events] == [1, 2, 3]
        assert [e.version for e in await store.read_stream(stream, after_version=1)] == [2, 3]
        assert await store.read_stream(f"{prefix}never-written") == []

    async def test_wrong_expected_version_raises_concurrency_error_with_the_actual_version(
        self, store: EventStore, prefix: str
    ) -> None:
        stream = f"{prefix}session"
        await store.append(stream, 0, noted(1, 2))

        with pytest.raises(ConcurrencyError) as behind:
            await store.append(stream, 1, noted(3))
        with pytest.raises(ConcurrencyError) as ahead:
            await store.append(f"{prefix}new", 4, noted(3))

        assert (behind.value.stream_id, behind.value.expected, behind.value.actual) == (stream, 1, 2)
        assert (ahead.value.expected, ahead.value.actual) == (4, 0)
        assert [e.version for e in await store.read_stream(stream)] == [1, 2]
        assert await store.read_stream(f"{prefix}new") == []

    async def test_concurrent_appends_at_the_same_version_let_exactly_one_win(
        self, store: EventStore, rival: EventStore, prefix: str
    ) -> None:
        stream = f"{prefix}session"
        writers = [store, rival] * 3

        outcomes = await bounded(
            asyncio.gather(
                *(w.append(stream, 0, noted(i)) for i, w in enumerate(writers)), return_exceptions=True
            )
        )

        winners = [o for o in outcomes if isinstance(o, AppendResult)]
        losers = [o for o in outcomes if isinstance(o, ConcurrencyError)]
        assert len(winners) == 1
        assert len(losers) == len(writers) - 1
        assert {(e.expected, e.actual) for e in losers} == {(0, 1)}
        assert await store.read_stream(stream) == list(winners[0].events)

    async def test_a_redelivered_command_appends_nothing_and_returns_the_first_events(
        self, store: EventStore, prefix: str
    ) -> None:
        stream, command = f"{prefix}session", issued(f"{prefix}command")
        first = await store.append(stream, 0, noted(1, 2), command=command)

        again = await store.append(stream, 0, noted(9), command=command)
        await store.append(stream, 2, noted(3))
        late = await store.append(stream, 0, noted(9), command=command)

        assert not first.duplicate
        assert again == late == AppendResult(first.events, duplicate=True)
        assert [e.data["n"] for e in await store.read_stream(stream)] == [1, 2, 3]

    async def test_a_command_delivered_twice_at_once_is_appended_once(
        self, store: EventStore, rival: EventStore, prefix: str
    ) -> None:
        stream, command = f"{prefix}session", issued(f"{prefix}command")

        results = await bounded(
            asyncio.gather(
                store.append(stream, 0, noted(1), command=command),
                rival.append(stream, 0, noted(1), command=command),
            )
        )

        assert sorted(r.duplicate for r in results) == [False, True]
        assert results[0].events == results[1].events
        assert await store.read_stream(stream) == list(results[0].events)

    async def test_a_command_that_appended_nothing_is_still_recorded(
        self, store: EventStore, prefix: str
    ) -> None:
        stream, command = f"{prefix}session", issued(f"{prefix}command")

        first = await store.append(stream, 0, [], command=command)
        again = await store.append(stream, 0, noted(1), command=command)

        assert first == AppendResult(())
        assert again == AppendResult((), duplicate=True)
        assert await store.read_stream(stream) == []

    async def test_read_all_returns_global_order_after_a_position_and_respects_the_limit(
        self, store: EventStore, prefix: str
    ) -> None:
        start = await store.last_position()
        appended: list[StoredEvent] = []
        for stream, version, values in (("a", 0, (1, 2)), ("b", 0, (3,)), ("a", 2, (4,))):
            appended += (await store.append(f"{prefix}{stream}", version, noted(*values))).events

        mine = owned(await store.read_all(start, limit=OUTBOX_WINDOW), prefix)
        page = await store.read_all(start, limit=2)
        rest = owned(await store.read_all(appended[1].position, limit=OUTBOX_WINDOW), prefix)

        assert mine == appended
        assert [e.position for e in mine] == sorted({e.position for e in mine})
        assert page == (await store.read_all(start, limit=OUTBOX_WINDOW))[:2]
        assert rest == appended[2:]
        assert await store.read_all(start, limit=0) == []

    async def test_events_for_command_returns_only_that_commands_events(
        self, store: EventStore, prefix: str
    ) -> None:
        stream = f"{prefix}session"
        first = await store.append(stream, 0, noted(1, 2), command=issued(f"{prefix}one"))
        second = await store.append(stream, 2, noted(3), command=issued(f"{prefix}two"))

        assert await store.events_for_command(issued(f"{prefix}one")) == list(first.events)
        assert await store.events_for_command(issued(f"{prefix}two")) == list(second.events)
        assert await store.events_for_command(issued(f"{prefix}unknown")) == []

    async def test_the_same_command_id_issued_for_another_tenant_or_subject_is_another_command(
        self, store: EventStore, prefix: str
    ) -> None:
        command_id = f"{prefix}plan-daily-notes-read-1"  # an id derived from content, say
        alice, bob = issued(command_id), issued(command_id, subject="bob")
        carol = issued(command_id, "globex", "carol")

        first = await store.append(f"{prefix}acme-alice", 0, noted(1), command=alice)
        second = await store.append(f"{prefix}acme-bob", 0, noted(2), command=bob)
        third = await store.append(f"{prefix}globex-carol", 0, noted(3), command=carol)
        again = await store.append(f"{prefix}acme-alice", 1, noted(9), command=alice)

        assert [r.duplicate for r in (first, second, third, again)] == [False, False, False, True]
        assert again.events == first.events
        assert [await store.events_for_command(key) for key in (alice, bob, carol)] == [
            list(first.events),
            list(second.events),
            list(third.events),
        ]
        assert await store.events_for_command(issued(command_id, "globex", "alice")) == []  # alice@globex
        for stream, value in (("acme-alice", 1), ("acme-bob", 2), ("globex-carol", 3)):
            assert [e.data["n"] for e in await store.read_stream(f"{prefix}{stream}")] == [value]

    async def test_the_outbox_holds_each_event_until_it_is_marked_published(
        self, store: EventStore, prefix: str
    ) -> None:
        appended = (await store.append(f"{prefix}a", 0, noted(1, 2))).events
        appended += (await store.append(f"{prefix}b", 0, noted(3))).events

        pending = owned(await store.pending_outbox(OUTBOX_WINDOW), prefix)
        await store.mark_published([e.position for e in appended[:2]])
        after_two = owned(await store.pending_outbox(OUTBOX_WINDOW), prefix)
        await store.mark_published([e.position for e in appended[:2]])
        await store.mark_published([])
        after_repeat = owned(await store.pending_outbox(OUTBOX_WINDOW), prefix)
        await store.mark_published([appended[2].position])

        assert pending == list(appended)
        assert after_two == after_repeat == [appended[2]]
        assert owned(await store.pending_outbox(OUTBOX_WINDOW), prefix) == []
        assert owned(await store.read_all(appended[0].position - 1, OUTBOX_WINDOW), prefix) == list(appended)

    async def test_pending_outbox_respects_its_limit(self, store: EventStore, prefix: str) -> None:
        await store.append(f"{prefix}a", 0, noted(1, 2, 3))

        assert len(await store.pending_outbox(limit=2)) == 2

    async def test_last_position_is_the_highest_recorded_position(
        self, store: EventStore, prefix: str
    ) -> None:
        appended = (await store.append(f"{prefix}a", 0, noted(1, 2))).events

        last = await store.last_position()

        assert last >= appended[-1].position
        assert [e.position for e in await store.read_all(last - 1, limit=1)] == [last]

    async def test_a_reader_tailing_read_all_during_concurrent_appends_misses_no_event(
        self, store: EventStore, rival: EventStore, prefix: str
    ) -> None:
        start = await store.last_position()
        appending = asyncio.gather(
            *((store, rival)[i % 2].append(f"{prefix}{i}", 0, noted(i, i)) for i in range(20))
        )
        seen: list[StoredEvent] = []

        async with asyncio.timeout(WAIT_SECONDS):
            mark = start
            while not appending.done():
                mark = await tail(store, mark, seen)
            results = await appending
            await tail(store, mark, seen)

        appended = sorted((e for r in results for e in r.events), key=lambda e: e.position)
        assert owned(seen, prefix) == appended

    # Examples share the store fixture (each uses fresh names), and every adapter's test class
    # runs this same function: hence the two suppressed health checks.
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
    )
    @given(
        rounds=st.lists(
            st.dictionaries(st.integers(0, 3), st.integers(1, 3), min_size=1, max_size=4),
            min_size=1,
            max_size=5,
        )
    )
    async def test_global_order_follows_commit_order_and_each_stream_is_its_subsequence(
        self, store: EventStore, rival: EventStore, rounds: list[dict[int, int]]
    ) -> None:
        prefix = f"p{uuid.uuid4().hex[:12]}-"  # fixtures persist across examples; names do not
        start = await store.last_position()
        versions: dict[str, int] = {}
        returned: list[list[StoredEvent]] = []  # per round, what its appends said they stored
        for number, counts in enumerate(rounds):
            appends = []
            for index, (stream_number, count) in enumerate(counts.items()):
                stream = f"{prefix}{stream_number}"
                writer = (store, rival)[index % 2]
                appends.append(writer.append(stream, versions.get(stream, 0), noted(*[number] * count)))
                versions[stream] = versions.get(stream, 0) + count
            results = await bounded(asyncio.gather(*appends))
            for result in results:  # within one append, positions follow versions
                assert [e.position for e in result.events] == sorted({e.position for e in result.events})
            returned.append(sorted((e for r in results for e in r.events), key=lambda e: e.position))

        mine = owned(await everything_after(store, start, page=7), prefix)
        await store.mark_published([e.position for e in mine])

        # A round began after the previous one had committed: every later position is higher.
        for earlier, later in itertools.pairwise(returned):
            assert earlier[-1].position < later[0].position
        assert mine == [e for round_events in returned for e in round_events]  # as the appends said
        assert len(mine) == sum(versions.values())
        for stream in versions:
            assert await store.read_stream(stream) == [e for e in mine if e.stream_id == stream]


class RacedStore(SqlEventStore):
    """A writer that raced past the checks: its first check sees the stream empty and the
    command unrecorded, as if it had read them just before a rival committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._stale = True

    async def _check(
        self, conn: AsyncConnection, stream_id: str, command: CommandKey | None
    ) -> tuple[int, bool]:
        if self._stale:
            self._stale = False
            return 0, False
        return await super()._check(conn, stream_id, command)


def _schema_drift(connection: Connection) -> list[object]:
    """How the migrated schema differs from the tables SqlEventStore queries (other tables aside)."""

    def ours(name: str | None, kind: str, _parent: object) -> bool:
        return kind != "table" or name in metadata.tables

    context = MigrationContext.configure(connection, opts={"include_name": ours})
    return list(compare_metadata(context, metadata))


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _on_connection(url: str, inspect: Callable[[Connection], T]) -> T:
    """Run a synchronous inspection on a fresh connection to `url`."""
    engine = create_store_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(inspect)
    finally:
        await engine.dispose()


class SqlEventStoreContract(EventStoreContract):
    """The contract plus SqlEventStore's own cases; subclasses provide `database_url`."""

    @pytest.fixture
    def database_url(self) -> str:
        """The URL of a database migrated to head."""
        raise NotImplementedError("a backend's test class provides the database")

    @pytest.fixture
    async def store(self, database_url: str) -> AsyncIterator[EventStore]:
        opened = await open_event_store(database_url)
        yield opened
        await opened.close()

    @pytest.fixture
    async def rival(self, database_url: str) -> AsyncIterator[EventStore]:
        opened = await open_event_store(database_url)
        yield opened
        await opened.close()

    @pytest.fixture
    async def raced(self, database_url: str) -> AsyncIterator[EventStore]:
        opened = RacedStore(create_store_engine(database_url))
        yield opened
        await opened.close()

    async def test_a_writer_that_raced_past_the_version_check_gets_a_concurrency_error(
        self, store: EventStore, raced: EventStore, prefix: str
    ) -> None:
        stream = f"{prefix}session"
        won = await store.append(stream, 0, noted(1))

        with pytest.raises(ConcurrencyError) as lost:
            await raced.append(stream, 0, noted(2))

        assert (lost.value.expected, lost.value.actual) == (0, 1)
        assert await store.read_stream(stream) == list(won.events)

    @pytest.mark.parametrize("same_stream", [True, False], ids=["same-stream", "other-stream"])
    async def test_a_redelivery_that_raced_past_the_command_check_is_a_duplicate(
        self, store: EventStore, raced: EventStore, prefix: str, same_stream: bool
    ) -> None:
        command = issued(f"{prefix}command")
        won = await store.append(f"{prefix}first", 0, noted(1), command=command)

        again = await raced.append(
            f"{prefix}{'first' if same_stream else 'second'}", 0, noted(1), command=command
        )

        assert again == AppendResult(won.events, duplicate=True)
        assert await store.read_stream(f"{prefix}second") == []
        assert await store.events_for_command(command) == list(won.events)

    async def test_the_migration_creates_the_tables_the_store_queries(self, database_url: str) -> None:
        assert await _on_connection(database_url, _schema_drift) == []

    async def test_migrating_again_changes_nothing(
        self, store: EventStore, database_url: str, prefix: str
    ) -> None:
        written = await store.append(f"{prefix}session", 0, noted(1))

        await bounded(upgrade_to_head_async(database_url))

        head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
        assert await _on_connection(database_url, _current_revision) == head
        assert await store.read_stream(f"{prefix}session") == list(written.events)
