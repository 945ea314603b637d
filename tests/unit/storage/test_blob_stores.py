"""Sealed blobs on the file and SQLite stores, and MCP transport sessions in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.blobs.files import FileBlobStore
from mcp_ledger.blobs.ports import BlobStore
from mcp_ledger.blobs.sql import SqlBlobStore
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.mcp_api.transport.sessions import MemoryTransportSessions, TransportSessions
from tests.contracts.blob_store_contract import MARKER, BlobStoreContract, blob
from tests.contracts.transport_sessions_contract import TransportSessionsContract


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    return url


@pytest.fixture
async def key_store(database_url: str) -> AsyncIterator[KeyStore]:
    keys = SqlKeyStore(create_store_engine(database_url), KekRing([Kek(new_key())]), owns_engine=True)
    yield keys
    await keys.close()


class TestFileBlobs(BlobStoreContract):
    @pytest.fixture
    def raw(self, tmp_path: Path) -> BlobStore:
        return FileBlobStore(tmp_path / "blobs")

    @pytest.fixture
    def keys(self, key_store: KeyStore) -> KeyStore:
        return key_store

    async def test_no_file_holds_the_contents_or_the_name_in_the_clear(
        self, blobs: BlobStore, tmp_path: Path
    ) -> None:
        await blobs.put(blob())
        files = [path for path in (tmp_path / "blobs").rglob("*") if path.is_file()]
        assert len(files) == 2
        assert not [path for path in files if MARKER.encode() in path.read_bytes()]


class TestSqliteBlobs(BlobStoreContract):
    @pytest.fixture
    async def raw(self, database_url: str) -> AsyncIterator[BlobStore]:
        store = SqlBlobStore(create_store_engine(database_url))
        yield store
        await store.close()

    @pytest.fixture
    def keys(self, key_store: KeyStore) -> KeyStore:
        return key_store


class TestMemoryTransportSessions(TransportSessionsContract):
    @pytest.fixture
    def sessions(self) -> TransportSessions:
        return MemoryTransportSessions()
