"""In-memory session views: the embedded default, rebuilt from the event store at start."""

from __future__ import annotations

from collections import defaultdict

from mcp_ledger.projections.sessions.view import SessionView


class MemorySessionViewStore:
    """Session views in a dict; one process only."""

    def __init__(self) -> None:
        self._views: dict[tuple[str, str], SessionView] = {}
        self._by_subject: defaultdict[tuple[str, str], set[str]] = defaultdict(set)

    async def get(self, tenant: str, session_id: str) -> SessionView | None:
        return self._views.get((tenant, session_id))

    async def compare_and_set(self, view: SessionView, expected_position: int) -> bool:
        key = (view.tenant, view.session_id)
        current = self._views.get(key)
        if (current.last_position if current else 0) != expected_position:
            return False
        self._views[key] = view
        self._by_subject[(view.tenant, view.subject)].add(view.session_id)
        return True

    async def sessions_of(self, tenant: str, subject: str) -> list[str]:
        return sorted(self._by_subject.get((tenant, subject), set()))

    async def purge_subject(self, tenant: str, subject: str) -> int:
        removed = 0
        for session_id in self._by_subject.pop((tenant, subject), set()):
            removed += self._views.pop((tenant, session_id), None) is not None
        return removed

    async def all_views(self, tenant: str | None = None) -> list[SessionView]:
        views = [v for (t, _), v in self._views.items() if tenant is None or t == tenant]
        return sorted(views, key=lambda v: (v.tenant, v.session_id))

    async def clear(self) -> None:
        self._views.clear()
        self._by_subject.clear()

    async def close(self) -> None:
        return None
