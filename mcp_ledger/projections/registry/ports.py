"""The registry view store port: where projected tool registries live (Redis, or memory).

Writes are compare-and-set on the view's stream version, so several projectors (the
worker's group, every API replica's watcher) may apply the same event safely.
"""

from __future__ import annotations

from typing import Protocol

from mcp_ledger.projections.registry.view import RegistryView


class RegistryViewStore(Protocol):
    """Registry views keyed by tenant and scope (None: tenant-wide, else a session id)."""

    async def get(self, tenant: str, session_id: str | None) -> RegistryView | None:
        """The view, or None when nothing was ever registered in that scope."""
        ...

    async def version(self, tenant: str, session_id: str | None) -> int:
        """The view's version alone (0: nothing registered), without reading its tools: what a
        cache of something derived from the view compares against."""
        ...

    async def compare_and_set(self, view: RegistryView, expected_version: int) -> bool:
        """Store the view if the stored one is still at expected_version (0: none stored)."""
        ...

    async def clear(self) -> None:
        """Remove every registry view (before a rebuild)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
