"""The outbox relay: every stored event reaches ledger.events, and only stored ones do.

Events and their outbox rows are written in one transaction by the command handler; this
relay publishes them and then clears the rows. The fast path publishes right after the
append and queues the rows for clearing, which the relay's loop does in batches off the
caller's critical path (what a few milliseconds publish, in one DELETE); the sweep publishes
whatever a crash left behind (rows older than a grace period, so it does not race the fast
path). Publication is at-least-once: readers dedupe by global position.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.producers.ports import MessageBus, Outgoing

log = logging.getLogger(__name__)


def event_headers(event: StoredEvent) -> dict[str, str]:
    """Headers downstream subscribers can route on without parsing the body."""
    return {
        "event_type": event.event_type,
        "schema_version": str(event.schema_version),
        "command_id": str(event.metadata.get("command_id", "")),
        "correlation_id": str(event.metadata.get("correlation_id", "")),
        # The trace the event was recorded in (observability/traced_store.py), when it was.
        **({"traceparent": str(event.metadata["traceparent"])} if "traceparent" in event.metadata else {}),
    }


class OutboxRelay:
    """Publishes stored events to the events topic and clears their outbox rows."""

    def __init__(
        self,
        store: EventStore,
        bus: MessageBus,
        topic: str,
        *,
        grace: float = 2.0,
        mark_delay: float = 0.02,
    ) -> None:
        self._store = store
        self._bus = bus
        self._topic = topic
        self._grace = timedelta(seconds=grace)
        # The loop gathers what is published within `mark_delay` into one DELETE: a write
        # transaction per batch of calls instead of one per call. Far under `grace`, so the
        # sweep never mistakes a row waiting here for one a crash left behind.
        self._mark_delay = mark_delay
        self._published: list[int] = []
        self._marks_waiting = asyncio.Event()

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """Publish events in order and queue their outbox rows for clearing.

        Raises:
            BusError: publishing failed; the rows stay for the sweep.
        """
        # One batch: the bus sends them together and waits once for all acknowledgements.
        batch = [
            Outgoing(
                event.stream_id,
                json.dumps(event.to_json(), separators=(",", ":")).encode(),
                event_headers(event),
            )
            for event in events
        ]
        await self._bus.publish_many(self._topic, batch)
        self._published.extend(event.position for event in events)
        self._marks_waiting.set()

    async def flush_marks(self) -> int:
        """Clear the outbox rows of everything published so far; returns how many."""
        positions, self._published = self._published, []
        self._marks_waiting.clear()
        if positions:
            try:
                await self._store.mark_published(positions)
            except Exception:
                self._published.extend(positions)  # keep them for the next flush
                raise
        return len(positions)

    async def sweep_once(self) -> int:
        """Publish pending events older than the grace period; returns how many."""
        await self.flush_marks()
        cutoff = datetime.now(UTC) - self._grace
        pending = [e for e in await self._store.pending_outbox() if e.recorded_at <= cutoff]
        if pending:
            await self.publish(pending)
            await self.flush_marks()
            log.info("outbox sweep published %d events", len(pending))
        return len(pending)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Clear published rows as they come and sweep every `interval` seconds, until `stop`."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while not stop.is_set():
            try:
                if loop.time() >= next_sweep:
                    await self.sweep_once()
                    next_sweep = loop.time() + interval
                else:
                    await self._gather_marks(stop)
                    await self.flush_marks()
            except Exception:  # boundary: a failed sweep or flush is retried on the next tick
                log.exception("outbox relay tick failed")
            await self._wait_for_work(stop, until=next_sweep - loop.time())
        await self.flush_marks()

    async def _gather_marks(self, stop: asyncio.Event) -> None:
        if self._published and self._mark_delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._mark_delay)

    async def _wait_for_work(self, stop: asyncio.Event, *, until: float) -> None:
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._marks_waiting.wait())}
        try:
            await asyncio.wait(waiters, timeout=max(until, 0.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
