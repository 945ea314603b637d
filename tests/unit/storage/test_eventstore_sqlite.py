"""The event store contract on SQLite: SqlEventStore over aiosqlite, one database file per test.

Owns the SQLite wiring (a migrated file in tmp_path) and what only a private database shows:
an empty store, and the connection settings appends rely on. The cases themselves live in
tests/contracts/eventstore_contract.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.eventstore.sql import create_store_engine
from tests.contracts.eventstore_contract import SqlEventStoreContract


class TestSqliteEventStore(SqlEventStoreContract):
    @pytest.fixture
    async def database_url(self, tmp_path: Path) -> str:
        # A directory that does not exist yet: migrating and opening must create it.
        url = f"sqlite+aiosqlite:///{tmp_path / 'state' / 'ledger.db'}"
        await upgrade_to_head_async(url)
        return url

    async def test_a_new_store_is_empty(self, store: EventStore) -> None:
        assert await store.last_position() == 0
        assert await store.read_all() == []
        assert await store.pending_outbox() == []

    async def test_connections_use_wal_a_busy_timeout_and_foreign_keys(self, database_url: str) -> None:
        engine = create_store_engine(database_url)
        try:
            async with engine.connect() as connection:
                settings = [
                    (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                    for name in ("journal_mode", "busy_timeout", "foreign_keys")
                ]
        finally:
            await engine.dispose()

        assert settings == ["wal", 5000, 1]

    async def test_the_outbox_only_refers_to_recorded_events(self, database_url: str) -> None:
        engine = create_store_engine(database_url)
        try:
            async with engine.begin() as connection:
                with pytest.raises(Exception, match="FOREIGN KEY"):
                    await connection.execute(text("INSERT INTO outbox (position) VALUES (999)"))
        finally:
            await engine.dispose()
