"""The blob store and replay-guard ports.

Blobs are documents a tool keeps server-side for the client to read later through a
signed pointer (crypto/pointers.py). They belong to a tenant, a subject and a session, so
erasure can find all of a subject's blobs; an erased blob stays as a tombstone (no name, no
mime type, no data) so a pointer to it can say it was erased rather than merely missing.
Every field not on domain/personal.NOT_PERSONAL (name, mime type, contents) is sealed with
the subject's data key by sealed.py in front of the stores. The replay guard
remembers which one-time pointers were read. Adapters: files.py and sql.py for blobs;
memory.py and redis.py for the guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mcp_ledger.domain.personal import Personal


@dataclass(frozen=True, slots=True)
class Blob:
    blob_id: str
    tenant: str
    subject: str
    session_id: str
    name: Personal[str]
    mime_type: Personal[str]
    """The caller chose it, so it is sealed like the name and the contents."""
    data: Personal[bytes]
    created_at: float
    erased: bool = False
    """A tombstone left by erasure: name, mime type and data are empty."""


class BlobStore(Protocol):
    async def put(self, blob: Blob) -> None:
        """Store (or overwrite, for a re-run tool) one blob."""
        ...

    async def get(self, tenant: str, blob_id: str) -> Blob | None:
        """The blob, or None when there is none (or it was purged)."""
        ...

    async def purge_subject(self, tenant: str, subject: str) -> int:
        """Replace every blob of a subject by a tombstone; returns how many were not yet
        tombstones (idempotent: 0 the second time)."""
        ...

    async def close(self) -> None: ...


class ReplayGuard(Protocol):
    async def first_use(self, nonce: str, ttl: float) -> bool:
        """True the first time a nonce is seen within `ttl` seconds, False after."""
        ...

    async def close(self) -> None: ...
