"""Erasure of a subject's blobs: the purger the erasure handler calls."""

from __future__ import annotations

from mcp_ledger.blobs.ports import BlobStore


class BlobPurger:
    """Deletes every blob of a subject (pointers to them then read as gone)."""

    name = "blobs"

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def purge(self, tenant: str, subject: str) -> int:
        return await self._blobs.purge_subject(tenant, subject)
