"""Blobs sealed with their subject's data key: the BlobStore every process uses.

Wraps any BlobStore (files, SQL). `put` seals every field of the blob that
domain/personal.NOT_PERSONAL does not name (the contents, the document's name and its mime
type: all chosen by the caller) with AES-256-GCM under the subject's data key from the
KeyStore, each bound to tenant, subject, blob id and field, so the store itself (a file's
sidecar, a row) only ever holds ciphertext for them and a sealed blob copied under another id
or subject does not open. `get` opens them; once the subject's key is destroyed (erasure) a
blob reads as erased even before its purger has run. Fields written before they were sealed
(no format prefix) are returned as they are. Does not decide when blobs are purged (the
erasure handler calls `purge_subject`) or check pointers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

from mcp_ledger.blobs.ports import Blob, BlobStore
from mcp_ledger.crypto.cipher import decrypt, encrypt
from mcp_ledger.crypto.ports import DataKey, KeyDestroyedError, KeyStore
from mcp_ledger.domain.personal import personal_fields

_FORMAT = b"ledger-blob/v1\n"
_TEXT_PREFIX = "sealed:v1:"
SEALED_FIELDS = personal_fields(Blob)
"""The blob's fields sealed at rest: every one not on the allowlist."""

_EMPTY: dict[type, Any] = {bytes: b"", str: ""}


def _associated(blob: Blob, part: str) -> bytes:
    return json.dumps(["ledger-blob", blob.tenant, blob.subject, blob.blob_id, part]).encode()


def is_sealed_blob(data: bytes) -> bool:
    """Whether stored blob bytes are in the sealed format."""
    return data.startswith(_FORMAT)


def _seal(key: DataKey, blob: Blob, name: str) -> bytes | str:
    value = getattr(blob, name)
    if isinstance(value, bytes):
        return _FORMAT + key.key_id.encode() + b"\n" + encrypt(key.key, value, _associated(blob, name))
    if isinstance(value, str):
        sealed = encrypt(key.key, value.encode(), _associated(blob, name))
        return _TEXT_PREFIX + key.key_id + ":" + base64.b64encode(sealed).decode()
    raise TypeError(f"Blob.{name} is neither text nor bytes: decide whether it is personal")


def _key_id(stored: object) -> str | None:
    """The key a stored field was sealed under, None for a field stored in the clear."""
    if isinstance(stored, bytes) and is_sealed_blob(stored):
        return stored.removeprefix(_FORMAT).partition(b"\n")[0].decode()
    if isinstance(stored, str) and stored.startswith(_TEXT_PREFIX):
        return stored.removeprefix(_TEXT_PREFIX).rsplit(":", 1)[0]
    return None


def _open(key: DataKey, blob: Blob, name: str) -> bytes | str:
    stored = getattr(blob, name)
    if isinstance(stored, bytes):
        sealed = stored.removeprefix(_FORMAT).partition(b"\n")[2]
        return decrypt(key.key, sealed, _associated(blob, name))
    sealed_text = base64.b64decode(str(stored).rsplit(":", 1)[1])
    return decrypt(key.key, sealed_text, _associated(blob, name)).decode()


class SealedBlobStore:
    """A BlobStore that seals on the way in and opens on the way out."""

    def __init__(self, inner: BlobStore, keys: KeyStore) -> None:
        self._inner = inner
        self._keys = keys

    async def put(self, blob: Blob) -> None:
        """Store the blob with its personal fields sealed.

        Raises:
            TypeError: a field nobody decided about is neither text nor bytes.
        """
        key = await self._keys.active_key(blob.tenant, blob.subject)
        sealed: dict[str, Any] = {name: _seal(key, blob, name) for name in SEALED_FIELDS}
        await self._inner.put(replace(blob, **sealed))

    async def get(self, tenant: str, blob_id: str) -> Blob | None:
        """The opened blob; a tombstone, or a blob whose key is destroyed, reads as erased.

        Raises:
            DecryptionError: the stored ciphertext was altered or moved from another blob.
        """
        stored = await self._inner.get(tenant, blob_id)
        if stored is None or stored.erased:
            return stored
        sealed = {name: k for name in SEALED_FIELDS if (k := _key_id(getattr(stored, name))) is not None}
        keys: dict[str, DataKey] = {}
        for key_id in set(sealed.values()):
            key = await self._key_or_none(stored, key_id)
            if key is None:
                empty: dict[str, Any] = {name: _EMPTY[type(getattr(stored, name))] for name in SEALED_FIELDS}
                return replace(stored, **empty, erased=True)
            keys[key_id] = key
        opened: dict[str, Any] = {name: _open(keys[key_id], stored, name) for name, key_id in sealed.items()}
        return replace(stored, **opened)

    async def _key_or_none(self, blob: Blob, key_id: str) -> DataKey | None:
        try:
            return await self._keys.key(blob.tenant, blob.subject, key_id)
        except KeyDestroyedError:
            return None

    async def purge_subject(self, tenant: str, subject: str) -> int:
        return await self._inner.purge_subject(tenant, subject)

    async def close(self) -> None:
        await self._inner.close()
