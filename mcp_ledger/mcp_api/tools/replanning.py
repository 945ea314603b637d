"""Hybrid mode: replanning a plan that failed, through the client's LLM (MCP sampling) or
the planner endpoint.

The replanner sees the goal and, per task, only its tool, status, attempts and typed error
code: never tool output or free-text messages, which could carry injected instructions.
The new plan may use only the tools of the plan it replaces, plus those the caller names in
approve_new_tools; it is validated like any plan and accepted under a new id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import mcp_types as types
from mcp.server import ServerRequestContext

from mcp_ledger.domain.plans.model import Plan
from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.tools.planners import EndpointPlanner, PlannerError
from mcp_ledger.mcp_api.tools.sampling import sample_plan
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.view import PlanView

REPLANNABLE = frozenset(
    {"failed", "completed_with_errors", "compensated", "compensation_failed", "timed_out"}
)


class PlanDesk(Protocol):
    """What replanning needs of the plan tools: views, checks, acceptance, the planner."""

    views: PlanViewStore
    planner: EndpointPlanner | None

    def visible_tools(
        self, identity: Identity, registered: Mapping[str, ToolSpec] | None = None
    ) -> list[ToolSpec]: ...

    async def scope_tools(self, identity: Identity, session_id: str | None) -> dict[str, ToolSpec]: ...

    def check(
        self, raw: dict[str, Any], identity: Identity, registered: Mapping[str, ToolSpec] | None = None
    ) -> tuple[Plan | None, list[str]]: ...

    async def accept(
        self, plan: Plan, identity: Identity, session_id: str | None, *, execute: bool
    ) -> types.CallToolResult: ...


def replan_goal(view: PlanView) -> str:
    """The goal text for the replanner: the goal and what happened, typed facts only."""
    summary = [
        {
            "id": tid,
            "tool": task.tool_name,
            "status": task.status,
            "attempts": task.attempts,
            "error_code": task.error_code,
        }
        for tid, task in view.tasks.items()
    ]
    return (
        f"{view.goal or '(no goal was given)'}\n\nA previous plan for this goal ended {view.status}. "
        f"Its tasks (status and error codes only):\n{json.dumps(summary)}\n"
        "Write a new plan that reaches the goal, avoiding what failed."
    )


def tools_outside(plan: Plan, allowed: set[str]) -> list[str]:
    """Problems for every tool the plan uses outside `allowed`."""
    used = [(task.id, task.tool_name) for task in plan.tasks]
    used += [(f"{task.id} (compensate)", task.compensate.tool_name) for task in plan.tasks if task.compensate]
    return [
        f"task {tid}: {tool} is not a tool of the plan being replaced (it needs approve_new_tools)"
        for tid, tool in used
        if tool not in allowed
    ]


async def replan(
    plans: PlanDesk,
    ctx: ServerRequestContext[Any],
    params: types.CallToolRequestParams,
    identity: Identity,
    session_id: str | None,
) -> types.CallToolResult | types.InputRequiredResult:
    """Handle replan_plan for the caller."""
    arguments = dict(params.arguments or {})
    plan_id = str(arguments["plan_id"])
    view = await plans.views.get(identity.tenant, plan_view_id(identity.subject, plan_id))
    if view is None or view.subject != identity.subject:
        return _error("unknown_plan: unknown plan")
    if view.status not in REPLANNABLE:
        return _error(f"not_replannable: only a plan that failed can be replanned; this one is {view.status}")
    allowed = {task.tool_name for task in view.tasks.values()} | set(arguments.get("approve_new_tools", []))
    registered = await plans.scope_tools(identity, session_id)
    tools = [spec for spec in plans.visible_tools(identity, registered) if spec.name in allowed]
    new_id = f"{plan_id[:100]}-r{uuid.uuid4().hex[:8]}"

    def problems_of(raw: dict[str, Any]) -> list[str]:
        plan, problems = plans.check({**raw, "plan_id": new_id}, identity, registered)
        return problems if plan is None else tools_outside(plan, allowed)

    try:
        raw = await _ask(plans, ctx, params, replan_goal(view), tools, problems_of)
    except PlannerError as error:
        return _error(f"invalid_plan: {error}")
    if isinstance(raw, types.InputRequiredResult):
        return raw
    plan, problems = plans.check({**raw, "plan_id": new_id}, identity, registered)
    if plan is None:
        return _error("invalid_plan: " + "; ".join(problems))
    return await plans.accept(plan, identity, session_id, execute=bool(arguments.get("execute", False)))


async def _ask(
    plans: PlanDesk,
    ctx: ServerRequestContext[Any],
    params: types.CallToolRequestParams,
    goal: str,
    tools: list[ToolSpec],
    problems_of: Any,
) -> dict[str, Any] | types.InputRequiredResult:
    if plans.planner is not None:
        return await plans.planner.plan(goal, tools, problems_of)
    return await sample_plan(ctx, params, goal, tools, problems_of)


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
