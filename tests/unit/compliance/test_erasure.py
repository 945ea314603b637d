"""Erasure on the SQLite store: crypto-shredding, purgers, the PII-free record, resumption."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import erased
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.compliance.erasure import EraseSubject, ErasureCompleted
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.streams import session_stream
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.purge import SessionViewPurger
from mcp_ledger.projections.sessions.memory import MemorySessionViewStore

MARKER = "marker-5f1c0a7e"


class Recorded:
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    async def __call__(self, events: Sequence[StoredEvent]) -> None:
        self.events.extend(events)


class MemoryBlobs:
    """A purger for another kind of subject data, as the API's blob store will register."""

    name = "blobs"

    def __init__(self) -> None:
        self.blobs: dict[tuple[str, str], list[bytes]] = {("acme", "alice"): [b"a", b"b"]}

    async def purge(self, tenant: str, subject: str) -> int:
        return len(self.blobs.pop((tenant, subject), []))


class CrashingPurger:
    name = "flaky"

    def __init__(self) -> None:
        self.crashes = 1

    async def purge(self, tenant: str, subject: str) -> int:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("worker died half way")
        return 0


@pytest.fixture
async def keys(tmp_path: Path, store: SqlEventStore) -> AsyncIterator[SqlKeyStore]:
    engine = create_store_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    opened = SqlKeyStore(engine, KekRing([Kek(new_key())]), owns_engine=True)
    yield opened
    await opened.close()


async def _alice_writes_the_marker(store: SqlEventStore, keys: SqlKeyStore) -> tuple[str, Recorded]:
    recorded = Recorded()
    handler = CommandHandler(store, builtin_catalog(), BUILTIN_RUNNERS, recorded, sealer=RecordSealer(keys))
    session_id = new_session_id()
    for tool, arguments in (("session_open", {}), ("note_set", {"key": "k", "value": MARKER})):
        call = CallTool(
            tenant="acme", subject="alice", session_id=session_id, tool_name=tool, arguments=arguments
        )
        await handler.handle(call)
    await handler.handle(
        CallTool(tenant="acme", subject="alice", tool_name="echo", arguments={"text": MARKER})
    )
    return session_id, recorded


def _erase() -> EraseSubject:
    return EraseSubject(tenant="acme", subject="alice", requested_by="admin-1")


async def test_personal_fields_are_stored_and_published_only_as_ciphertext(
    store: SqlEventStore, keys: SqlKeyStore
) -> None:
    session_id, published = await _alice_writes_the_marker(store, keys)
    stored = await store.read_all()
    assert MARKER not in repr([(e.data, e.metadata) for e in stored])
    assert MARKER not in repr([e.to_json() for e in published.events])
    session = Session.replay(
        "s",
        [
            await EventMapper(RecordSealer(keys)).to_domain(e)
            for e in stored
            if e.stream_id == session_stream("acme", session_id)
        ],
    )
    assert session.notes == {"k": MARKER}


async def test_after_erasure_nothing_opens_and_replays_still_fold(
    store: SqlEventStore, keys: SqlKeyStore
) -> None:
    session_id, published = await _alice_writes_the_marker(store, keys)
    views = MemorySessionViewStore()
    projector = SessionProjector(views, opener=EventMapper(RecordSealer(keys)).open)
    for event in published.events:
        await projector.apply(event)
    assert (await views.get("acme", session_id)) is not None

    blobs = MemoryBlobs()
    done = await ErasureHandler(store, keys, [SessionViewPurger(views), blobs], Recorded()).handle(_erase())

    assert (done.keys_destroyed, done.purged) == (1, {"session_views": 1, "blobs": 2})
    assert await views.sessions_of("acme", "alice") == []
    mapper = EventMapper(RecordSealer(keys))
    opened = [await mapper.open(e) for e in await store.read_all()]
    assert MARKER not in repr([e.data for e in opened])
    session = Session.replay(
        "s", [await mapper.to_domain(e) for e in await store.read_stream(session_stream("acme", session_id))]
    )
    assert session.notes == {"[erased]": erased()}  # the key the caller chose is sealed too
    rebuilt = MemorySessionViewStore()
    await SessionProjector(rebuilt, opener=mapper.open).rebuild(store)
    assert MARKER not in repr(await rebuilt.all_views())


async def test_the_erasure_record_holds_no_personal_data(store: SqlEventStore, keys: SqlKeyStore) -> None:
    await _alice_writes_the_marker(store, keys)
    recorded = Recorded()
    command = _erase()
    await ErasureHandler(store, keys, [], recorded).handle(command)
    types = [e.event_type for e in recorded.events]
    assert types == ["ErasureStarted", "SubjectKeysDestroyed", "ErasureCompleted"]
    assert all(e.stream_id == command.stream_id for e in recorded.events)
    assert MARKER not in repr([e.to_json() for e in recorded.events])


async def test_erasing_again_with_the_same_command_repeats_nothing(
    store: SqlEventStore, keys: SqlKeyStore
) -> None:
    await _alice_writes_the_marker(store, keys)
    command, recorded = _erase(), Recorded()
    handler = ErasureHandler(store, keys, [MemoryBlobs()], recorded)
    first = await handler.handle(command)
    again = await handler.handle(command)
    assert again == first
    assert len(recorded.events) == 3


async def test_an_erasure_that_crashed_after_shredding_resumes_and_completes(
    store: SqlEventStore, keys: SqlKeyStore
) -> None:
    await _alice_writes_the_marker(store, keys)
    command, recorded = _erase(), Recorded()
    blobs = MemoryBlobs()
    crashing = ErasureHandler(store, keys, [CrashingPurger(), blobs], recorded)
    with pytest.raises(RuntimeError, match="half way"):
        await crashing.handle(command)
    assert await keys.destroy("acme", "alice") == 0  # the key was already gone before the crash

    done = await crashing.handle(command)  # the redelivery

    assert done.keys_destroyed == 1
    assert done.purged == {"flaky": 0, "blobs": 2}
    stream = [e.event_type for e in await store.read_stream(command.stream_id)]
    assert stream == ["ErasureStarted", "SubjectKeysDestroyed", "ErasureCompleted"]
    assert isinstance(done, ErasureCompleted)


async def test_a_subject_that_returns_after_erasure_writes_under_a_new_key(
    store: SqlEventStore, keys: SqlKeyStore
) -> None:
    await _alice_writes_the_marker(store, keys)
    await ErasureHandler(store, keys, [], Recorded()).handle(_erase())
    _, published = await _alice_writes_the_marker(store, keys)
    mapper = EventMapper(RecordSealer(keys))
    fresh = [await mapper.open(e) for e in published.events]
    assert MARKER in repr([e.data for e in fresh])
