"""In-memory registry views: the embedded default, rebuilt from the event store at start."""

from __future__ import annotations

from mcp_ledger.projections.registry.view import RegistryView


class MemoryRegistryViewStore:
    """Registry views in a dict; one process only."""

    def __init__(self) -> None:
        self._views: dict[tuple[str, str | None], RegistryView] = {}

    async def get(self, tenant: str, session_id: str | None) -> RegistryView | None:
        return self._views.get((tenant, session_id))

    async def version(self, tenant: str, session_id: str | None) -> int:
        view = self._views.get((tenant, session_id))
        return 0 if view is None else view.version

    async def compare_and_set(self, view: RegistryView, expected_version: int) -> bool:
        key = (view.tenant, view.session_id)
        current = self._views.get(key)
        if (current.version if current else 0) != expected_version:
            return False
        self._views[key] = view
        return True

    async def clear(self) -> None:
        self._views.clear()

    async def close(self) -> None:
        return None
