"""The plan projector: folds plan-stream events into plan views, live or by replay.

Like the session projector: live from ledger.events in its own consumer group, or by
replaying the store into an empty view store; checkpoints make a second application a no-op.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from mcp_ledger.domain.events import UnknownEventError, from_record
from mcp_ledger.domain.streams import parse_plan_stream
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.projections.plan_ports import PlanViewStore
from mcp_ledger.projections.plan_view import fold_plan
from mcp_ledger.projections.projector import Opener, ProjectionRaceError, as_is

log = logging.getLogger(__name__)


class PlanProjector:
    """Applies stored plan events to plan views."""

    def __init__(self, views: PlanViewStore, *, max_attempts: int = 5, opener: Opener = as_is) -> None:
        self._views = views
        self._open = opener
        self._max_attempts = max_attempts

    async def handle_payload(self, payload: bytes) -> None:
        """Apply one message from ledger.events."""
        await self.apply(StoredEvent.from_json(json.loads(payload)))

    async def apply(self, stored: StoredEvent) -> bool:
        """Fold one event in; False when it is not a plan event or was applied already.

        Raises:
            ProjectionRaceError: another projector kept winning the compare-and-set.
        """
        names = parse_plan_stream(stored.stream_id)
        if names is None:
            return False
        stored = await self._open(stored)
        try:
            event = from_record(stored.event_type, stored.schema_version, stored.data)
        except (UnknownEventError, ValidationError):
            log.warning("skipping unreadable event %s at %d", stored.event_type, stored.position)
            return False
        tenant, plan_id = names
        for _ in range(self._max_attempts):
            current = await self._views.get(tenant, plan_id)
            checkpoint = current.last_position if current else 0
            if stored.position <= checkpoint:
                return False
            new_view = fold_plan(current, event, stored.position)
            if new_view is None:
                return False
            if await self._views.compare_and_set(new_view, checkpoint):
                return True
        raise ProjectionRaceError(f"plan view {tenant}/{plan_id} kept changing")

    async def rebuild(self, store: EventStore, *, batch: int = 1000) -> int:
        """Clear the plan views and replay every stored event; returns the events read."""
        await self._views.clear()
        position, count = 0, 0
        while True:
            events = await store.read_all(after_position=position, limit=batch)
            if not events:
                return count
            for stored in events:
                await self.apply(stored)
            position, count = events[-1].position, count + len(events)
