"""Recovery of the read models after the state store lost its data: a Redis restarted
without persistence, a failover to an empty replica, a FLUSHALL.

The views are only a cache of the event store, but nothing else would ever refill the views
of sessions, plans and registries that existed before the loss: their next events fold onto
nothing and are dropped (fold() needs the opening event). So each worker keeps an eye on an
epoch marker in the state store: when it disappears, or another worker wrote a new one, the
worker replays the whole event store into the views. Checkpoints make the replay idempotent
and safe beside live projection, so several workers replaying at once is wasted work, never
wrong. Deliberately not handled: a loss while no worker runs (the first worker to start
just writes a marker; run `mcp-ledger projections rebuild`), and views dropped by their TTL,
which a replay writes again for another TTL, as `projections rebuild` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.projections.projector import Applier, replay

log = logging.getLogger(__name__)


class EpochMarker(Protocol):
    """A value in the state store that lives exactly as long as the store's data."""

    async def read(self) -> str | None:
        """The current epoch, or None when the marker is gone."""
        ...

    async def claim(self, epoch: str) -> str:
        """Write `epoch` unless a marker exists; returns the marker's value either way."""
        ...

    async def close(self) -> None: ...


class StateLossWatch:
    """Replays the store into the views whenever the state store's epoch changes."""

    def __init__(
        self,
        marker: EpochMarker,
        store: EventStore,
        appliers: Sequence[Applier],
        *,
        interval: float = 2.0,
        batch: int = 1000,
    ) -> None:
        self._marker = marker
        self._store = store
        self._appliers = appliers
        self._interval = interval
        self._batch = batch
        self._epoch: str | None = None
        self.replays = 0

    async def check(self) -> bool:
        """Compare the marker with the epoch this worker knows; replay if the data was lost.
        Returns whether it replayed.

        Raises:
            Exception: whatever the marker or the store raise (the caller retries later).
        """
        if self._epoch is None:
            # First look: a missing marker cannot be told from a fresh deployment; adopt it.
            self._epoch = await self._marker.claim(uuid.uuid4().hex)
            return False
        current = await self._marker.read()
        if current == self._epoch:
            return False
        log.warning(
            "the state store lost its data (epoch %s -> %s): replaying the events", self._epoch, current
        )
        # Mark the new epoch before replaying, so a second loss during the replay is seen next
        # time; adopt it only after the replay, so a failed replay is retried.
        new_epoch = await self._marker.claim(uuid.uuid4().hex)
        count = await self.replay()
        self._epoch = new_epoch
        self.replays += 1
        log.warning("views rebuilt from %d stored events after the state store's loss", count)
        return True

    async def replay(self) -> int:
        """Apply every stored event to every view (idempotent); returns the events read."""
        return await replay(self._store, self._appliers, batch=self._batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Check every `interval` seconds until `stop`; failures are logged and retried."""
        while not stop.is_set():
            try:
                await self.check()
            except Exception as error:  # boundary: state store or event store down; next tick retries
                log.warning("state-loss check failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
