"""The plan view store port: where plan-status views live (Redis, or memory).

Writes are compare-and-set on the view's checkpoint, as for session views, so two
projectors can never apply an event twice or go backwards.
"""

from __future__ import annotations

from typing import Protocol

from mcp_ledger.projections.plans.view import PlanView


class PlanViewStore(Protocol):
    """Plan views keyed tenant:{tenant}:plan:{view id}, indexed per subject. The view id names
    the owner and the plan (streams.plan_view_id): plan ids are labels within one subject's
    plans, so a lookup always says whose plan it means."""

    async def get(self, tenant: str, view_id: str) -> PlanView | None:
        """The view under streams.plan_view_id(subject, plan_id), None when there is none."""
        ...

    async def compare_and_set(self, view: PlanView, expected_position: int) -> bool:
        """Store the view if the stored one is still at expected_position (0: none stored)."""
        ...

    async def plans_of(self, tenant: str, subject: str) -> list[str]:
        """Ids of the subject's plans."""
        ...

    async def purge_subject(self, tenant: str, subject: str) -> int:
        """Remove every view of the subject's plans and their index (erasure); returns how
        many views were removed. Idempotent."""
        ...

    async def clear(self) -> None:
        """Remove every plan view and index this store holds (before a rebuild)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
