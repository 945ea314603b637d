"""Plan views in Redis (the shared mechanics are in redis_views.py).

Keys: {prefix}tenant:{tenant}:plan:{id} and {prefix}tenant:{tenant}:subject:{subject}:plans.
Views hold task outputs in the clear, so they follow the session views' retention, and
erasure purges a subject's plans.
"""

from __future__ import annotations

from mcp_ledger.projections.plans.view import PlanView
from mcp_ledger.projections.redis_views import RedisViewStore


class RedisPlanViewStore(RedisViewStore[PlanView]):
    """Plan views shared by every API replica."""

    kind = "plan"

    def _view_id(self, view: PlanView) -> str:
        return view.plan_id

    def _parse(self, raw: bytes | str) -> PlanView:
        return PlanView.model_validate_json(raw)

    async def plans_of(self, tenant: str, subject: str) -> list[str]:
        return await self._ids_of(tenant, subject)

    async def clear(self) -> None:
        await self._delete_matching("tenant:*:plan:*", "tenant:*:subject:*:plans")
