"""The erasure barrier: every process forgets the erased subject before the erasure completes.

A process holds a subject's data outside the event store in its caches (unwrapped keys,
sessions folded from opened events) and, for a moment, in the projections writing opened
data into views. `SubjectCaches` is one process's list of those: `drop` forgets the subject
in every cache and waits for the projections of that subject in flight, so a view written
from data opened before the shred lands before the views are purged. A process that cannot
hear the barrier (lost its link to the other replicas) switches caching off until it can.

`ErasureBarrier` is the erasure's side: `cross` returns once every live process of the
deployment has dropped the subject. `LocalBarrier` is the embedded deployment's (one process);
barrier_redis.py has the distributed one. Does not destroy keys or purge views (erasure.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 10.0
Subject = tuple[str, str]


class BarrierError(Exception):
    """The erasure barrier could not be crossed in time; the erasure is not complete."""


class SubjectCache(Protocol):
    """A cache holding subjects' keys or data opened with them."""

    def forget_subject(self, tenant: str, subject: str) -> None:
        """Drop everything of the subject (and keep nothing from lookups running now)."""
        ...

    def set_caching(self, enabled: bool) -> None:
        """Off: drop everything and cache nothing until on again."""
        ...


class SubjectCaches:
    """This process's caches of subject data, and its projections in flight per subject."""

    def __init__(self, *, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        self._caches: list[SubjectCache] = []
        self._writing: Counter[Subject] = Counter()
        self._changed = asyncio.Condition()
        self._drain_timeout = drain_timeout
        self._caching = True

    def register(self, cache: SubjectCache) -> None:
        """Add a cache (at wiring time)."""
        self._caches.append(cache)
        cache.set_caching(self._caching)

    @property
    def caching(self) -> bool:
        return self._caching

    @asynccontextmanager
    async def writing(self, tenant: str, subject: str) -> AsyncIterator[None]:
        """Around a projection that opens the subject's data and writes it into a view."""
        self._writing[(tenant, subject)] += 1
        try:
            yield
        finally:
            self._writing[(tenant, subject)] -= 1
            if not self._writing[(tenant, subject)]:
                del self._writing[(tenant, subject)]
            async with self._changed:
                self._changed.notify_all()

    async def drop(self, tenant: str, subject: str) -> None:
        """Forget the subject in every cache, then wait for their projections in flight.

        Raises:
            BarrierError: a projection of the subject did not finish within the drain timeout.
        """
        self.forget(tenant, subject)
        try:
            async with asyncio.timeout(self._drain_timeout), self._changed:
                await self._changed.wait_for(lambda: (tenant, subject) not in self._writing)
        except TimeoutError as error:
            raise BarrierError(
                f"a projection of a subject of tenant {tenant} kept running for {self._drain_timeout:.0f}s"
            ) from error
        self.forget(tenant, subject)  # whatever those projections looked up meanwhile

    def forget(self, tenant: str, subject: str) -> None:
        """Forget the subject in every cache now (no waiting)."""
        for cache in self._caches:
            cache.forget_subject(tenant, subject)

    def set_caching(self, enabled: bool) -> None:
        """Switch every cache off (dropping everything) or on again; no-op if already so."""
        if enabled == self._caching:
            return
        # The barrier warns about the cause (a lease not renewed, a lost subscription).
        log.info("subject caches %s", "on" if enabled else "off until the erasure barrier is reachable")
        self._caching = enabled
        for cache in self._caches:
            cache.set_caching(enabled)


class ErasureBarrier(Protocol):
    """What an erasure waits for before it completes."""

    async def cross(self, tenant: str, subject: str, erasure_id: str) -> int:
        """Return once every live process dropped the subject; returns how many did.

        Raises:
            BarrierError: some live process did not confirm in time.
        """
        ...


class LocalBarrier:
    """The barrier of a deployment that is one process (embedded)."""

    def __init__(self, caches: SubjectCaches) -> None:
        self._caches = caches

    async def cross(self, tenant: str, subject: str, erasure_id: str) -> int:
        await self._caches.drop(tenant, subject)
        return 1
