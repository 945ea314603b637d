"""The registry projector: folds registry events into registry views, live or by replay.

Applied by the worker's projection group and by each API replica's watcher; the version
compare-and-set makes the second application a no-op. Returns what changed so the API can
tell the affected MCP sessions. Registry views need no personal field (a data source's DSN
stays sealed in the event store), so sealed fields are folded in as erased placeholders and
no key is ever needed here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from mcp_ledger.crypto.records import unsealed_as_erased
from mcp_ledger.domain.events import UnknownEventError, from_record
from mcp_ledger.domain.registry.aggregate import REGISTRY_EVENTS
from mcp_ledger.domain.streams import parse_registry_stream
from mcp_ledger.domain.upstreams.events import UPSTREAM_EVENTS
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.projections.projector import replay
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.registry.view import RegistryView, fold

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """A registry event's scope: `session_id` None means every session of the tenant."""

    tenant: str
    session_id: str | None
    version: int


def registry_change(stored: StoredEvent) -> RegistryChange | None:
    """The scope a stored event changes, None when it is not a registry event."""
    scope = parse_registry_stream(stored.stream_id)
    if scope is None or stored.event_type not in REGISTRY_EVENTS | UPSTREAM_EVENTS:
        return None
    return RegistryChange(scope[0], scope[1], stored.version)


class RegistryProjector:
    """Applies stored registry events to registry views."""

    def __init__(self, views: RegistryViewStore, *, max_attempts: int = 5) -> None:
        self._views = views
        self._max_attempts = max_attempts

    async def handle_payload(self, payload: bytes) -> None:
        """Apply one message from ledger.events."""
        await self.apply(StoredEvent.from_json(json.loads(payload)))

    async def apply(self, stored: StoredEvent) -> bool:
        """Fold one event in; False when it is not a registry event, was applied already, or
        arrives before its predecessor was projected (left to the in-order projector)."""
        change = registry_change(stored)
        if change is None:
            return False
        try:
            event = from_record(
                stored.event_type, stored.schema_version, unsealed_as_erased(stored.event_type, stored.data)
            )
        except (UnknownEventError, ValidationError):
            log.warning("skipping unreadable registry event %s at %d", stored.event_type, stored.position)
            return False
        for _ in range(self._max_attempts):
            current = await self._views.get(change.tenant, change.session_id)
            current = current or RegistryView(tenant=change.tenant, session_id=change.session_id)
            if stored.version != current.version + 1:
                return False
            if await self._views.compare_and_set(fold(current, event), current.version):
                return True
        return False

    async def rebuild(self, store: EventStore, *, batch: int = 1000) -> int:
        """Clear the views and replay every stored event; returns the events read."""
        await self._views.clear()
        return await replay(store, [self.apply], batch=batch)
