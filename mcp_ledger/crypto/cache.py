"""A bounded in-process cache of unwrapped data keys in front of a KeyStore.

Keys destroyed through this cache are evicted at once, so this process never serves them
again. Another process that destroys a key cannot reach this cache: entries expire after
`ttl` seconds, which bounds how long such a key stays usable here (the API also evicts on the
erasure events it sees). Does not store anything durably.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TypeVar

from mcp_ledger.crypto.ports import DataKey, KeyStore

K = TypeVar("K")


class CachingKeyStore:
    """KeyStore wrapper with LRU eviction and a time-to-live per entry."""

    def __init__(self, inner: KeyStore, *, max_entries: int = 10_000, ttl: float = 5.0) -> None:
        self._inner = inner
        self._max = max_entries
        self._ttl = ttl
        self._active: OrderedDict[tuple[str, str], tuple[float, DataKey]] = OrderedDict()
        self._by_id: OrderedDict[tuple[str, str, str], tuple[float, DataKey]] = OrderedDict()

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        cached = self._fresh(self._active, (tenant, subject))
        if cached is not None:
            return cached
        found = await self._inner.active_key(tenant, subject)
        self._remember(self._active, (tenant, subject), found)
        self._remember(self._by_id, (tenant, subject, found.key_id), found)
        return found

    async def key(self, tenant: str, subject: str, key_id: str) -> DataKey:
        cached = self._fresh(self._by_id, (tenant, subject, key_id))
        if cached is not None:
            return cached
        found = await self._inner.key(tenant, subject, key_id)
        self._remember(self._by_id, (tenant, subject, key_id), found)
        return found

    async def destroy(self, tenant: str, subject: str) -> int:
        self.evict(tenant, subject)
        destroyed = await self._inner.destroy(tenant, subject)
        self.evict(tenant, subject)  # a lookup may have refilled it while the destroy ran
        return destroyed

    def evict(self, tenant: str, subject: str) -> None:
        """Forget the subject's keys (another process is erasing it)."""
        self._active.pop((tenant, subject), None)
        for entry in [k for k in self._by_id if k[0] == tenant and k[1] == subject]:
            del self._by_id[entry]

    async def close(self) -> None:
        self._active.clear()
        self._by_id.clear()
        await self._inner.close()

    def _fresh(self, entries: OrderedDict[K, tuple[float, DataKey]], key: K) -> DataKey | None:
        entry = entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if time.monotonic() - stored_at > self._ttl:
            del entries[key]
            return None
        entries.move_to_end(key)
        return value

    def _remember(self, entries: OrderedDict[K, tuple[float, DataKey]], key: K, value: DataKey) -> None:
        entries[key] = (time.monotonic(), value)
        entries.move_to_end(key)
        while len(entries) > self._max:
            entries.popitem(last=False)
