"""Erasure of a subject's session and plan views: the projection side of the right to erasure.

SubjectDataPurgers (see consumers/erasure.py) over any SessionViewStore and PlanViewStore;
they do not destroy keys or touch the event store.
"""

from __future__ import annotations

from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.sessions.ports import SessionViewStore


class SessionViewPurger:
    """Removes a subject's session views and their per-subject index."""

    name = "session_views"

    def __init__(self, views: SessionViewStore) -> None:
        self._views = views

    async def purge(self, tenant: str, subject: str) -> int:
        return await self._views.purge_subject(tenant, subject)


class PlanViewPurger:
    """Removes a subject's plan views (they hold task outputs in the clear) and their index."""

    name = "plan_views"

    def __init__(self, plans: PlanViewStore) -> None:
        self._plans = plans

    async def purge(self, tenant: str, subject: str) -> int:
        return await self._plans.purge_subject(tenant, subject)
