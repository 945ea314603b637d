"""Blobs sealed with their subject's data key: the BlobStore every process uses.

Wraps any BlobStore (files, SQL). `put` seals the contents and the document's name (free text
the subject chose) with AES-256-GCM under the subject's data key from the KeyStore, bound to
tenant, subject and blob id, so the store itself only ever holds ciphertext and a sealed
blob copied under another id or subject does not open. `get` opens them; once the subject's
key is destroyed (erasure) a blob reads as erased even before its purger has run. Blobs
written before sealing existed (no format prefix) are returned as they are. Does not decide
when blobs are purged (the erasure handler calls `purge_subject`) or check pointers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace

from mcp_ledger.blobs.ports import Blob, BlobStore
from mcp_ledger.crypto.cipher import decrypt, encrypt
from mcp_ledger.crypto.ports import DataKey, KeyDestroyedError, KeyStore

_FORMAT = b"ledger-blob/v1\n"
_NAME_PREFIX = "sealed:v1:"


def _associated(blob: Blob, part: str) -> bytes:
    return json.dumps(["ledger-blob", blob.tenant, blob.subject, blob.blob_id, part]).encode()


def is_sealed_blob(data: bytes) -> bool:
    """Whether stored blob bytes are in the sealed format."""
    return data.startswith(_FORMAT)


class SealedBlobStore:
    """A BlobStore that seals on the way in and opens on the way out."""

    def __init__(self, inner: BlobStore, keys: KeyStore) -> None:
        self._inner = inner
        self._keys = keys

    async def put(self, blob: Blob) -> None:
        key = await self._keys.active_key(blob.tenant, blob.subject)
        sealed_data = encrypt(key.key, blob.data, _associated(blob, "data"))
        sealed_name = encrypt(key.key, blob.name.encode(), _associated(blob, "name"))
        header = _FORMAT + key.key_id.encode() + b"\n"
        await self._inner.put(
            replace(
                blob,
                data=header + sealed_data,
                name=_NAME_PREFIX + key.key_id + ":" + base64.b64encode(sealed_name).decode(),
            )
        )

    async def get(self, tenant: str, blob_id: str) -> Blob | None:
        """The opened blob; a tombstone, or a blob whose key is destroyed, reads as erased.

        Raises:
            DecryptionError: the stored ciphertext was altered or moved from another blob.
        """
        stored = await self._inner.get(tenant, blob_id)
        if stored is None or stored.erased or not is_sealed_blob(stored.data):
            return stored
        key_id, _, sealed_data = stored.data.removeprefix(_FORMAT).partition(b"\n")
        key = await self._key_or_none(stored, key_id.decode())
        if key is None:
            return replace(stored, name="", data=b"", erased=True)
        return replace(
            stored,
            data=decrypt(key.key, sealed_data, _associated(stored, "data")),
            name=self._name(stored, key),
        )

    def _name(self, stored: Blob, key: DataKey) -> str:
        if not stored.name.startswith(_NAME_PREFIX):
            return stored.name
        sealed = base64.b64decode(stored.name.rsplit(":", 1)[1])
        return decrypt(key.key, sealed, _associated(stored, "name")).decode()

    async def _key_or_none(self, blob: Blob, key_id: str) -> DataKey | None:
        try:
            return await self._keys.key(blob.tenant, blob.subject, key_id)
        except KeyDestroyedError:
            return None

    async def purge_subject(self, tenant: str, subject: str) -> int:
        return await self._inner.purge_subject(tenant, subject)

    async def close(self) -> None:
        await self._inner.close()
