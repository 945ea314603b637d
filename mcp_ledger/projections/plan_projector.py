"""The plan projector: folds plan-stream events into plan views, live or by replay.

Like the session projector: live from ledger.events in its own consumer group, or by
replaying the store into an empty view store; checkpoints make a second application a no-op;
given the store, a view that missed events of its stream is folded again from the stream.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from mcp_ledger.domain.events import DomainEvent, UnknownEventError, from_record
from mcp_ledger.domain.plan_events import PlanAccepted
from mcp_ledger.domain.streams import parse_plan_stream
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.projections.plan_ports import PlanViewStore
from mcp_ledger.projections.plan_view import PlanView, fold_plan
from mcp_ledger.projections.projector import Opener, ProjectionRaceError, as_is

log = logging.getLogger(__name__)


class PlanProjector:
    """Applies stored plan events to plan views."""

    def __init__(
        self,
        views: PlanViewStore,
        *,
        max_attempts: int = 5,
        opener: Opener = as_is,
        store: EventStore | None = None,
    ) -> None:
        self._views = views
        self._open = opener
        self._max_attempts = max_attempts
        self._store = store

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
        event = await self._domain(stored)
        if event is None:
            return False
        tenant, plan_id = names
        for _ in range(self._max_attempts):
            current = await self._views.get(tenant, plan_id)
            checkpoint = current.last_position if current else 0
            if stored.position <= checkpoint:
                return False
            if self._store is not None and _missed_events(current, event, stored):
                new_view = await self._refold(self._store, stored)
            else:
                new_view = _folded(current, event, stored)
            if new_view is None:
                return False
            if await self._views.compare_and_set(new_view, checkpoint):
                return True
        raise ProjectionRaceError(f"plan view {tenant}/{plan_id} kept changing")

    async def _domain(self, stored: StoredEvent) -> DomainEvent | None:
        opened = await self._open(stored)
        try:
            return from_record(opened.event_type, opened.schema_version, opened.data)
        except (UnknownEventError, ValidationError):
            log.warning("skipping unreadable event %s at %d", stored.event_type, stored.position)
            return None

    async def _refold(self, store: EventStore, upto: StoredEvent) -> PlanView | None:
        """The view folded from its stream up to and including `upto`."""
        log.info("view of %s missed events: folding it again from its stream", upto.stream_id)
        view: PlanView | None = None
        for stored in await store.read_stream(upto.stream_id):
            if stored.version > upto.version:
                break
            event = await self._domain(stored)
            view = view if event is None else _folded(view, event, stored)
        return None if view is None else view.model_copy(update={"stream_version": upto.version})

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


def _folded(view: PlanView | None, event: DomainEvent, stored: StoredEvent) -> PlanView | None:
    new_view = fold_plan(view, event, stored.position)
    return None if new_view is None else new_view.model_copy(update={"stream_version": stored.version})


def _missed_events(view: PlanView | None, event: DomainEvent, stored: StoredEvent) -> bool:
    """Whether folding `event` onto `view` would skip events of its stream."""
    if view is None:
        return not isinstance(event, PlanAccepted) and stored.version > 1
    return stored.version != view.stream_version + 1
