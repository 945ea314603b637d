"""Erasure of a subject's session views: the projection side of the right to erasure.

A SubjectDataPurger (see consumers/erasure.py) over any SessionViewStore; does not destroy
keys or touch the event store.
"""

from __future__ import annotations

from mcp_ledger.projections.ports import SessionViewStore


class SessionViewPurger:
    """Removes a subject's session views and their per-subject index."""

    name = "session_views"

    def __init__(self, views: SessionViewStore) -> None:
        self._views = views

    async def purge(self, tenant: str, subject: str) -> int:
        return await self._views.purge_subject(tenant, subject)
