"""In-memory plan views: the embedded default, rebuilt from the event store at start."""

from __future__ import annotations

from collections import defaultdict

from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.projections.plans.view import PlanView


class MemoryPlanViewStore:
    """Plan views in a dict, keyed by tenant and view id (owner and plan id); one process only."""

    def __init__(self) -> None:
        self._views: dict[tuple[str, str], PlanView] = {}
        self._by_subject: defaultdict[tuple[str, str], set[str]] = defaultdict(set)

    async def get(self, tenant: str, view_id: str) -> PlanView | None:
        return self._views.get((tenant, view_id))

    async def compare_and_set(self, view: PlanView, expected_position: int) -> bool:
        key = (view.tenant, plan_view_id(view.subject, view.plan_id))
        current = self._views.get(key)
        if (current.last_position if current else 0) != expected_position:
            return False
        self._views[key] = view
        self._by_subject[(view.tenant, view.subject)].add(view.plan_id)
        return True

    async def all_views(self) -> list[PlanView]:
        """Every view, for resuming unfinished plans at start."""
        return sorted(self._views.values(), key=lambda v: (v.tenant, v.subject, v.plan_id))

    async def plans_of(self, tenant: str, subject: str) -> list[str]:
        return sorted(self._by_subject.get((tenant, subject), set()))

    async def purge_subject(self, tenant: str, subject: str) -> int:
        plan_ids = self._by_subject.pop((tenant, subject), set())
        keys = [(tenant, plan_view_id(subject, plan_id)) for plan_id in plan_ids]
        return sum(1 for key in keys if self._views.pop(key, None) is not None)

    async def clear(self) -> None:
        self._views.clear()
        self._by_subject.clear()

    async def close(self) -> None:
        return None
