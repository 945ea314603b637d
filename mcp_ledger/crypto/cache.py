"""A bounded in-process cache of unwrapped data keys in front of a KeyStore, and the pins
that keep work in flight from outliving an erasure.

Entries expire after `ttl` seconds. An erasure drops the subject from every process's cache
before it completes (the erasure barrier calls `forget_subject`); a lookup that was running
while that happened does not put its answer back (a generation counter), and a process that
loses touch with the barrier stops caching altogether (`set_caching(False)`). Whenever the
inner store says which key is the subject's active one, cached copies of their other keys
are dropped: a subject has one live key, so the others were destroyed meanwhile.

Pins (`unit`, `pin`): inside a unit of work the first key met for a subject is the one its
data is sealed with until the unit ends, even if an erasure destroys it meanwhile. A unit
that read a subject's data before the shred therefore writes only ciphertext nobody can
open, never a copy under the key the subject gets afterwards. A unit that first met the
subject after the shred (no live key) creates the new key, and it read nothing older.
Does not store anything durably.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from mcp_ledger.crypto.ports import DataKey, KeyStore

Subject = tuple[str, str]

# (tenant, subject) -> the pinned key, or None: the subject had no live key when first met.
_PINS: ContextVar[dict[Subject, DataKey | None] | None] = ContextVar("mcp_ledger_key_pins", default=None)


@dataclass
class _Keys:
    """What is cached of one subject: their active key and keys looked up by id."""

    active: tuple[float, DataKey] | None = None
    by_id: dict[str, tuple[float, DataKey]] = field(default_factory=dict)


class CachingKeyStore:
    """KeyStore wrapper with LRU eviction (by subject), a time-to-live per entry and units
    of work."""

    def __init__(self, inner: KeyStore, *, max_entries: int = 10_000, ttl: float = 5.0) -> None:
        self._inner = inner
        self._max = max_entries
        self._ttl = ttl
        self._subjects: OrderedDict[Subject, _Keys] = OrderedDict()
        self._generation = 0
        self._caching = True

    @property
    def inner(self) -> KeyStore:
        return self._inner

    @contextmanager
    def unit(self) -> Iterator[None]:
        if _PINS.get() is not None:
            yield  # the outermost unit's pins hold
            return
        token = _PINS.set({})
        try:
            yield
        finally:
            _PINS.reset(token)

    async def pin(self, tenant: str, subject: str) -> str | None:
        pins = _PINS.get()
        if pins is None:
            return None
        if (tenant, subject) not in pins:
            pins.setdefault((tenant, subject), await self._current(tenant, subject))
        pinned = pins[(tenant, subject)]
        return None if pinned is None else pinned.key_id

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        pins = _PINS.get()
        if pins is None:
            return await self._active_key(tenant, subject)
        await self.pin(tenant, subject)
        pinned = pins[(tenant, subject)]
        if pinned is None:
            pinned = pins[(tenant, subject)] = await self._active_key(tenant, subject)
        return pinned

    async def current_key(self, tenant: str, subject: str) -> DataKey | None:
        return await self._current(tenant, subject)

    async def key(self, tenant: str, subject: str, key_id: str) -> DataKey:
        if _PINS.get() is not None:
            await self.pin(tenant, subject)  # before reading: what is read is never sealed anew
        entry = self._subjects.get((tenant, subject))
        cached = None if entry is None else self._fresh(entry.by_id.get(key_id))
        if cached is not None:
            return cached
        generation = self._generation
        found = await self._inner.key(tenant, subject, key_id)
        if self._may_remember(generation):
            self._entry(tenant, subject).by_id[key_id] = (time.monotonic(), found)
        return found

    async def destroy(self, tenant: str, subject: str) -> int:
        self.forget_subject(tenant, subject)
        destroyed = await self._inner.destroy(tenant, subject)
        self.forget_subject(tenant, subject)
        return destroyed

    def forget_subject(self, tenant: str, subject: str) -> None:
        """Forget the subject's keys (an erasure of them is running somewhere)."""
        self._generation += 1
        self._subjects.pop((tenant, subject), None)

    def evict(self, tenant: str, subject: str) -> None:
        """Forget the subject's keys (another process is erasing it)."""
        self.forget_subject(tenant, subject)

    def set_caching(self, enabled: bool) -> None:
        """Off: forget every key and cache none until switched on again (this process lost
        touch with the erasure barrier, so it cannot be told to forget)."""
        self._generation += 1
        self._caching = enabled
        self._subjects.clear()

    async def close(self) -> None:
        self._subjects.clear()
        await self._inner.close()

    async def _active_key(self, tenant: str, subject: str) -> DataKey:
        cached = self._cached_active(tenant, subject)
        if cached is not None:
            return cached
        generation = self._generation
        found = await self._inner.active_key(tenant, subject)
        self._learned(tenant, subject, found, generation)
        return found

    async def _current(self, tenant: str, subject: str) -> DataKey | None:
        cached = self._cached_active(tenant, subject)
        if cached is not None:
            return cached
        generation = self._generation
        found = await self._inner.current_key(tenant, subject)
        self._learned(tenant, subject, found, generation)
        return found

    def _cached_active(self, tenant: str, subject: str) -> DataKey | None:
        entry = self._subjects.get((tenant, subject))
        return None if entry is None else self._fresh(entry.active)

    def _learned(self, tenant: str, subject: str, active: DataKey | None, generation: int) -> None:
        entry = self._subjects.get((tenant, subject))
        if entry is not None:  # one live key per subject: any other cached one was destroyed
            keep = None if active is None else active.key_id
            entry.by_id = {key_id: value for key_id, value in entry.by_id.items() if key_id == keep}
        if active is None or not self._may_remember(generation):
            return
        entry = self._entry(tenant, subject)
        entry.active = entry.by_id[active.key_id] = (time.monotonic(), active)

    def _may_remember(self, generation: int) -> bool:
        # A lookup that ran while a subject was forgotten may have read a key from before the
        # erasure: its answer is used once and not kept.
        return self._caching and generation == self._generation

    def _entry(self, tenant: str, subject: str) -> _Keys:
        entry = self._subjects.get((tenant, subject))
        if entry is None:
            entry = self._subjects[(tenant, subject)] = _Keys()
            while len(self._subjects) > self._max:
                self._subjects.popitem(last=False)
        self._subjects.move_to_end((tenant, subject))
        return entry

    def _fresh(self, stored: tuple[float, DataKey] | None) -> DataKey | None:
        if stored is None or time.monotonic() - stored[0] > self._ttl:
            return None
        return stored[1]
