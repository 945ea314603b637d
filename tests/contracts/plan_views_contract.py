"""One contract for every PlanViewStore: memory in unit tests, Redis in integration."""

from __future__ import annotations

import pytest

from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.view import PlanView, TaskView


def view(
    plan_id: str, position: int, subject: str = "alice", tenant: str = "acme", status: str = "running"
) -> PlanView:
    return PlanView(
        tenant=tenant,
        plan_id=plan_id,
        subject=subject,
        plan_hash="sha256:x",
        status=status,
        tasks={"a": TaskView(tool_name="echo", status="succeeded", output={"text": "hi"})},
        accepted_at=1.0,
        last_position=position,
    )


def alices(plan_id: str) -> str:
    """The view id of alice's plan of that id."""
    return plan_view_id("alice", plan_id)


class PlanViewStoreContract:
    """Subclasses provide a fresh, empty `plans` fixture."""

    @pytest.fixture
    def plans(self) -> PlanViewStore:
        raise NotImplementedError

    async def test_a_stored_plan_view_is_read_back(self, plans: PlanViewStore) -> None:
        assert await plans.compare_and_set(view("p1", 5), 0)
        assert await plans.get("acme", alices("p1")) == view("p1", 5)

    async def test_an_unknown_plan_has_no_view(self, plans: PlanViewStore) -> None:
        assert await plans.get("acme", alices("nope")) is None

    async def test_a_stale_checkpoint_loses_the_compare_and_set(self, plans: PlanViewStore) -> None:
        assert await plans.compare_and_set(view("p1", 5), 0)
        assert not await plans.compare_and_set(view("p1", 9, status="succeeded"), 0)
        assert await plans.compare_and_set(view("p1", 9, status="succeeded"), 5)
        stored = await plans.get("acme", alices("p1"))
        assert stored is not None
        assert stored.status == "succeeded"

    async def test_plans_of_one_tenant_are_not_visible_under_another(self, plans: PlanViewStore) -> None:
        assert await plans.compare_and_set(view("p1", 1, tenant="acme"), 0)
        assert await plans.get("globex", alices("p1")) is None

    async def test_two_subjects_plans_of_the_same_id_are_two_views(self, plans: PlanViewStore) -> None:
        assert await plans.compare_and_set(view("p1", 1), 0)
        assert await plans.compare_and_set(view("p1", 2, subject="bob", status="failed"), 0)
        assert await plans.get("acme", alices("p1")) == view("p1", 1)
        assert await plans.get("acme", plan_view_id("bob", "p1")) == view(
            "p1", 2, subject="bob", status="failed"
        )
        assert await plans.get("acme", "p1") is None  # a bare plan id names nobody's plan

    async def test_the_subject_index_lists_only_that_subjects_plans(self, plans: PlanViewStore) -> None:
        await plans.compare_and_set(view("p1", 1), 0)
        await plans.compare_and_set(view("p2", 2), 0)
        await plans.compare_and_set(view("p3", 3, subject="bob"), 0)
        assert await plans.plans_of("acme", "alice") == ["p1", "p2"]
        assert await plans.plans_of("acme", "bob") == ["p3"]

    async def test_clear_removes_every_plan_view(self, plans: PlanViewStore) -> None:
        await plans.compare_and_set(view("p1", 1), 0)
        await plans.clear()
        assert await plans.get("acme", alices("p1")) is None
        assert await plans.plans_of("acme", "alice") == []

    async def test_purging_a_subject_removes_only_their_plan_views_and_is_idempotent(
        self, plans: PlanViewStore
    ) -> None:
        await plans.compare_and_set(view("p1", 1), 0)
        await plans.compare_and_set(view("p2", 2), 0)
        await plans.compare_and_set(view("p3", 3, subject="bob"), 0)
        assert await plans.purge_subject("acme", "alice") == 2
        assert await plans.purge_subject("acme", "alice") == 0
        assert (await plans.get("acme", alices("p1")), await plans.plans_of("acme", "alice")) == (None, [])
        assert await plans.get("acme", plan_view_id("bob", "p3")) == view("p3", 3, subject="bob")
