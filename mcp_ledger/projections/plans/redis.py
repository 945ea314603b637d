"""Plan views in Redis (the shared mechanics are in redis_views.py).

Keys: {prefix}tenant:{tenant}:plan:{owner tag}:{plan id} (the view id, streams.plan_view_id)
and {prefix}tenant:{tenant}:subject:{subject}:plans, which lists view ids.
Views hold task outputs in the clear, so they follow the session views' retention, and
erasure purges a subject's plans.
"""

from __future__ import annotations

from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.projections.plans.view import PlanView
from mcp_ledger.projections.redis_views import RedisViewStore


class RedisPlanViewStore(RedisViewStore[PlanView]):
    """Plan views shared by every API replica."""

    kind = "plan"

    def _view_id(self, view: PlanView) -> str:
        return plan_view_id(view.subject, view.plan_id)

    def _parse(self, raw: bytes | str) -> PlanView:
        return PlanView.model_validate_json(raw)

    async def plans_of(self, tenant: str, subject: str) -> list[str]:
        # A view id is "{owner tag}:{plan id}"; a view stored before scoping is the plan id.
        return sorted(view_id.rpartition(":")[2] for view_id in await self._ids_of(tenant, subject))

    async def clear(self) -> None:
        await self._delete_matching("tenant:*:plan:*", "tenant:*:subject:*:plans")
