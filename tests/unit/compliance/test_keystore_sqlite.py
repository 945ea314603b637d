"""The key store contract on SQLite, and what the key table holds at rest."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.eventstore.tables import subject_keys
from tests.contracts.keystore_contract import KeyStoreContract

RING = KekRing([Kek(new_key())])


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    return url


class TestSqliteKeyStore(KeyStoreContract):
    @pytest.fixture
    async def keys(self, database_url: str) -> AsyncIterator[KeyStore]:
        store = SqlKeyStore(create_store_engine(database_url), RING, owns_engine=True)
        yield store
        await store.close()

    @pytest.fixture
    async def rival(self, database_url: str) -> AsyncIterator[KeyStore]:
        store = SqlKeyStore(create_store_engine(database_url), RING, owns_engine=True)
        yield store
        await store.close()


async def test_data_keys_are_stored_only_wrapped_and_destroyed_keys_not_at_all(database_url: str) -> None:
    keys = SqlKeyStore(create_store_engine(database_url), RING, owns_engine=True)
    try:
        alice = await keys.active_key("acme", "alice")
        await keys.active_key("acme", "bob")
        await keys.destroy("acme", "bob")
        engine = create_store_engine(database_url)
        async with engine.connect() as conn:
            rows = {row.subject: row for row in (await conn.execute(select(subject_keys))).all()}
        await engine.dispose()
    finally:
        await keys.close()
    assert alice.key not in rows["alice"].wrapped_key
    assert rows["alice"].kek_id == RING.current.kek_id
    assert rows["bob"].wrapped_key is None
    assert rows["bob"].destroyed_at is not None
