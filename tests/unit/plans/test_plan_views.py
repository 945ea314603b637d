"""Plan views: the store contract in memory, and the projector folding a real plan run."""

from __future__ import annotations

import pytest

from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.eventstore.sql import SqlEventStore
from mcp_ledger.projections.plans.memory import MemoryPlanViewStore
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.projector import PlanProjector
from tests.contracts.plan_views_contract import PlanViewStoreContract
from tests.support.plans import Recorder, accept, executor, tool


class TestMemoryPlanViews(PlanViewStoreContract):
    @pytest.fixture
    def plans(self) -> PlanViewStore:
        return MemoryPlanViewStore()


async def test_the_projection_of_a_run_shows_each_tasks_status_and_output(store: SqlEventStore) -> None:
    catalog = {"work": tool("work")}
    tools = Recorder()
    tools.failures_left["b"] = 1
    tasks = [
        {"id": "a", "tool_name": "work", "parameters": {"label": "a"}},
        {"id": "b", "tool_name": "work", "parameters": {"label": "b"}, "on_error": "continue"},
        {"id": "c", "tool_name": "work", "parameters": {"label": "c"}, "dependencies": ["b"]},
    ]
    stream = await accept(store, catalog, {"plan_id": "v", "goal": "show", "tasks": tasks})
    await executor(store, catalog, tools.runners(["work"])).run(stream)

    views = MemoryPlanViewStore()
    await PlanProjector(views).rebuild(store)
    await PlanProjector(views).rebuild(store)  # a second replay changes nothing
    view = await views.get("t", plan_view_id("someone", "v"))
    assert view is not None
    assert view.status == "completed_with_errors"
    assert view.goal == "show"
    assert view.tasks["a"].output == {"label": "a", "args": {"label": "a"}}
    assert (view.tasks["b"].status, view.tasks["b"].error_code) == ("failed", "transient")
    assert view.tasks["c"].status == "skipped"
    assert view.counts() == {"succeeded": 1, "failed": 1, "skipped": 1}
