"""The session view store port: where projected session state lives (Redis, or memory).

Writes are compare-and-set on the view's checkpoint so that two projectors (a rebalance, a
redelivery) can never apply an event twice or go backwards.
"""

from __future__ import annotations

from typing import Protocol

from mcp_ledger.projections.sessions.view import SessionView


class SessionViewStore(Protocol):
    """Session views keyed tenant:{tenant}:session:{id}, indexed per subject."""

    async def get(self, tenant: str, session_id: str) -> SessionView | None:
        """The view, or None when the session is unknown."""
        ...

    async def compare_and_set(self, view: SessionView, expected_position: int) -> bool:
        """Store the view if the stored one is still at expected_position (0: none stored)."""
        ...

    async def sessions_of(self, tenant: str, subject: str) -> list[str]:
        """Ids of the subject's sessions (the per-subject index for export and erasure)."""
        ...

    async def purge_subject(self, tenant: str, subject: str) -> int:
        """Remove every view of the subject's sessions and their index (erasure); returns how
        many views were removed. Idempotent."""
        ...

    async def all_views(self, tenant: str | None = None) -> list[SessionView]:
        """Every stored view (of one tenant), for comparisons and exports."""
        ...

    async def clear(self) -> None:
        """Remove every view and index this store holds (before a rebuild)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
