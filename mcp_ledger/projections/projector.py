"""The session projector: folds stored events into the view store, live or by replay.

Live, it consumes ledger.events in a consumer group (per-session order holds because the
bus key is the stream id). Rebuild replays the event store in global order into an empty
store. Either way each view's checkpoint makes applying an event twice a no-op.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from mcp_ledger.domain.events import UnknownEventError, from_record
from mcp_ledger.domain.streams import parse_session_stream
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.projections.ports import SessionViewStore
from mcp_ledger.projections.session_view import fold

log = logging.getLogger(__name__)

Opener = Callable[[StoredEvent], Awaitable[StoredEvent]]
"""Opens an event's sealed personal fields (injected by bootstrap; projections know no crypto)."""


async def as_is(stored: StoredEvent) -> StoredEvent:
    return stored


class ProjectionRaceError(Exception):
    """The view kept changing under the projector; the event will be redelivered."""


class SessionProjector:
    """Applies stored events to session views."""

    def __init__(self, views: SessionViewStore, *, max_attempts: int = 5, opener: Opener = as_is) -> None:
        self._views = views
        self._open = opener
        self._max_attempts = max_attempts

    async def handle_payload(self, payload: bytes) -> None:
        """Apply one message from ledger.events."""
        await self.apply(StoredEvent.from_json(json.loads(payload)))

    async def apply(self, stored: StoredEvent) -> bool:
        """Fold one event in; False when it is not a session event or was applied already.

        Raises:
            ProjectionRaceError: another projector kept winning the compare-and-set.
        """
        names = parse_session_stream(stored.stream_id)
        if names is None:
            return False
        try:
            opened = await self._open(stored)
            event = from_record(opened.event_type, opened.schema_version, opened.data)
        except (UnknownEventError, ValidationError):
            # Not ours to fold (another writer's stream or a newer schema): say so, keep going.
            log.warning("skipping unreadable event %s at %d", stored.event_type, stored.position)
            return False
        tenant, session_id = names
        for _ in range(self._max_attempts):
            current = await self._views.get(tenant, session_id)
            checkpoint = current.last_position if current else 0
            if stored.position <= checkpoint:
                return False
            new_view = fold(current, event, stored.position)
            if new_view is None:
                return False
            if await self._views.compare_and_set(new_view, checkpoint):
                return True
        raise ProjectionRaceError(f"view {tenant}/{session_id} kept changing")

    async def rebuild(self, store: EventStore, *, batch: int = 1000) -> int:
        """Clear the views and replay every stored event; returns the events read."""
        await self._views.clear()
        position, count = 0, 0
        while True:
            events = await store.read_all(after_position=position, limit=batch)
            if not events:
                return count
            for stored in events:
                await self.apply(stored)
            position, count = events[-1].position, count + len(events)
