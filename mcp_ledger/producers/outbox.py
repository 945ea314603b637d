"""The outbox relay: every stored event reaches ledger.events, and only stored ones do.

Events and their outbox rows are written in one transaction by the command handler; this
relay publishes them and then clears the rows. The fast path publishes right after the
append; the sweep publishes whatever a crash left behind (rows older than a grace period,
so it does not race the fast path). Publication is at-least-once: readers dedupe by
global position.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.producers.ports import MessageBus

log = logging.getLogger(__name__)


def event_headers(event: StoredEvent) -> dict[str, str]:
    """Headers downstream subscribers can route on without parsing the body."""
    return {
        "event_type": event.event_type,
        "schema_version": str(event.schema_version),
        "command_id": str(event.metadata.get("command_id", "")),
        "correlation_id": str(event.metadata.get("correlation_id", "")),
    }


class OutboxRelay:
    """Publishes stored events to the events topic and clears their outbox rows."""

    def __init__(self, store: EventStore, bus: MessageBus, topic: str, *, grace: float = 2.0) -> None:
        self._store = store
        self._bus = bus
        self._topic = topic
        self._grace = timedelta(seconds=grace)

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """Publish events in order, then clear their outbox rows.

        Raises:
            BusError: publishing failed; the rows stay for the sweep.
        """
        for event in events:
            value = json.dumps(event.to_json(), separators=(",", ":")).encode()
            await self._bus.publish(self._topic, event.stream_id, value, event_headers(event))
        await self._store.mark_published([event.position for event in events])

    async def sweep_once(self) -> int:
        """Publish pending events older than the grace period; returns how many."""
        cutoff = datetime.now(UTC) - self._grace
        pending = [e for e in await self._store.pending_outbox() if e.recorded_at <= cutoff]
        if pending:
            await self.publish(pending)
            log.info("outbox sweep published %d events", len(pending))
        return len(pending)

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Sweep every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception:  # boundary: a failed sweep is retried on the next tick
                log.exception("outbox sweep failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
