"""One contract for every BlobStore behind the sealing layer: files and SQLite in unit tests,
PostgreSQL in integration. What each store holds at rest is checked through `raw`, the store
underneath the sealing layer."""

from __future__ import annotations

import dataclasses

import pytest

from mcp_ledger.blobs.ports import Blob, BlobStore
from mcp_ledger.blobs.sealed import SealedBlobStore
from mcp_ledger.crypto.cipher import DecryptionError
from mcp_ledger.crypto.ports import KeyStore

MARKER = "MARKER-personal-7f3a"


def blob(blob_id: str = "b1", subject: str = "alice", text: str = MARKER) -> Blob:
    return Blob(
        blob_id=blob_id,
        tenant="acme",
        subject=subject,
        session_id="s1",
        name=f"notes of {MARKER}",
        mime_type="text/plain",
        data=text.encode(),
        created_at=1.0,
    )


class BlobStoreContract:
    """Subclasses provide `raw` (a fresh, empty store) and `keys` (a key store)."""

    @pytest.fixture
    def raw(self) -> BlobStore:
        raise NotImplementedError

    @pytest.fixture
    def keys(self) -> KeyStore:
        raise NotImplementedError

    @pytest.fixture
    def blobs(self, raw: BlobStore, keys: KeyStore) -> BlobStore:
        return SealedBlobStore(raw, keys)

    async def test_a_blob_reads_back_as_written_but_is_stored_only_as_ciphertext(
        self, blobs: BlobStore, raw: BlobStore
    ) -> None:
        await blobs.put(blob())
        assert await blobs.get("acme", "b1") == blob()
        stored = await raw.get("acme", "b1")
        assert stored is not None
        assert MARKER.encode() not in stored.data
        assert MARKER not in stored.name

    async def test_an_unknown_blob_is_none(self, blobs: BlobStore) -> None:
        assert await blobs.get("acme", "nope") is None

    async def test_a_blob_of_a_destroyed_key_reads_as_erased_before_any_purge(
        self, blobs: BlobStore, keys: KeyStore
    ) -> None:
        await blobs.put(blob())
        await keys.destroy("acme", "alice")
        erased = await blobs.get("acme", "b1")
        assert erased is not None
        assert (erased.erased, erased.data, erased.name) == (True, b"", "")

    async def test_purging_leaves_tombstones_of_only_that_subjects_blobs(
        self, blobs: BlobStore, raw: BlobStore
    ) -> None:
        await blobs.put(blob("b1"))
        await blobs.put(blob("b2"))
        await blobs.put(blob("b3", subject="bob"))
        assert await blobs.purge_subject("acme", "alice") == 2
        assert await blobs.purge_subject("acme", "alice") == 0
        tombstone = await raw.get("acme", "b1")
        assert tombstone is not None
        assert (tombstone.erased, tombstone.data, tombstone.name) == (True, b"", "")
        assert await blobs.get("acme", "b3") == blob("b3", subject="bob")

    async def test_a_sealed_blob_moved_to_another_id_does_not_open(
        self, blobs: BlobStore, raw: BlobStore
    ) -> None:
        await blobs.put(blob("b1"))
        stored = await raw.get("acme", "b1")
        assert stored is not None
        await raw.put(dataclasses.replace(stored, blob_id="b2"))
        with pytest.raises(DecryptionError):
            await blobs.get("acme", "b2")

    async def test_a_rerun_tool_overwrites_its_blob(self, blobs: BlobStore) -> None:
        await blobs.put(blob("b1", text="first"))
        await blobs.put(blob("b1", text="second"))
        assert await blobs.get("acme", "b1") == blob("b1", text="second")
