"""The worker opens a data source's sealed DSN per call, and cannot once the subject is erased."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.registry.data_source_secrets import DataSourceSecrets
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import is_sealed
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.registry.events import DataSourceConnected
from mcp_ledger.domain.streams import registry_stream
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine

DSN = "postgresql+asyncpg://shop:s3cret@db.internal/shop"


@pytest.fixture
async def keys(store: SqlEventStore, tmp_path: Path) -> AsyncIterator[SqlKeyStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    opened = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    yield opened
    await opened.close()


async def _connect(store: SqlEventStore, mapper: EventMapper) -> None:
    command = CallTool(
        tenant="acme", subject="alice", session_id="session-1", tool_name="connect_data_source"
    )
    event = DataSourceConnected(source="shop", dialect="postgresql", dsn=DSN, tables=["customers"])
    stream = registry_stream("acme", "session-1")
    await store.append(stream, 0, await mapper.to_new_events(command, [event], stream))


async def test_the_dsn_is_stored_sealed_and_opened_for_the_runner(
    store: SqlEventStore, keys: SqlKeyStore
) -> None:
    mapper = EventMapper(RecordSealer(keys))
    await _connect(store, mapper)
    stored = await store.read_stream(registry_stream("acme", "session-1"))
    assert is_sealed(stored[0].data["dsn"])
    assert "s3cret" not in repr(stored[0].data)
    assert await DataSourceSecrets(store, mapper).dsn("acme", "session-1", "shop") == DSN
    assert await DataSourceSecrets(store, mapper).dsn("acme", "session-1", "other") is None


async def test_an_erased_subjects_dsn_no_longer_opens(store: SqlEventStore, keys: SqlKeyStore) -> None:
    mapper = EventMapper(RecordSealer(keys))
    await _connect(store, mapper)
    await keys.destroy("acme", "alice")
    assert await DataSourceSecrets(store, mapper).dsn("acme", "session-1", "shop") is None
