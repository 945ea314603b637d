"""The API replica's registry watcher: registry events in, "tools changed for X" out.

Every API replica has a broadcast subscription to ledger.events; registry events go
through the projector (a no-op when the worker wrote them through already), and once the
view holds the event the watcher calls `on_tools_changed(tenant, session_id)`, where
session_id None means every session of the tenant. The MCP transport turns that into
notifications/tools/list_changed for the streams it holds; this module does not know MCP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from mcp_ledger.domain.registry.aggregate import REGISTRY_EVENTS
from mcp_ledger.domain.upstreams.events import UPSTREAM_EVENTS
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.projector import RegistryProjector, registry_change

log = logging.getLogger(__name__)

ToolsChanged = Callable[[str, str | None], Awaitable[None]]


class RegistryWatcher:
    """Turns registry events seen by this replica into tools-changed callbacks."""

    def __init__(
        self,
        projector: RegistryProjector,
        catalog: ToolCatalog,
        on_tools_changed: ToolsChanged,
        *,
        settle_timeout: float = 5.0,
    ) -> None:
        self._projector = projector
        self._catalog = catalog
        self._on_tools_changed = on_tools_changed
        self._settle_timeout = settle_timeout

    async def on_event(self, event_type: str, payload: bytes) -> None:
        """Handle one message of ledger.events (its event_type header and body)."""
        if event_type not in REGISTRY_EVENTS | UPSTREAM_EVENTS:
            return
        stored = StoredEvent.from_json(json.loads(payload))
        change = registry_change(stored)
        if change is None:
            return
        await self._projector.apply(stored)
        if not await self._catalog.wait_for(
            change.tenant, change.session_id, change.version, self._settle_timeout
        ):
            # The in-order projector is behind; clients will see the change on their next list.
            log.warning("registry %s/%s not at version %d", change.tenant, change.session_id, change.version)
            return
        await self._on_tools_changed(change.tenant, change.session_id)
