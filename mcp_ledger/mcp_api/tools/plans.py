"""The planner's MCP surface: create_plan, execute_plan, plan_status, cancel_plan, and the
Plan Object's JSON Schema as the resource ledger://schemas/plan.

create_plan takes a plan (JSON object, YAML-form object, or YAML text) or a goal for a
planner (planners.py), validates it for this caller before anything is published, and sends
AcceptPlan; the worker validates again and freezes it. A plan id is the caller's label: it
names one of the caller's own plans, never anyone else's (another subject's plan of the same
id is as unknown as an unused id, and does not stop the caller from using it). Status is read
from the plan-status projection, under the caller's own key, never from the event store.
Long plans are "call now, fetch later": execute_plan answers once the plan is started (or,
with wait_seconds, when it ends or the wait is over).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext

from mcp_ledger.checks.arguments import plan_parameter_problems
from mcp_ledger.checks.documents import DocumentError
from mcp_ledger.checks.yaml_documents import load_yaml_off_loop
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import AcceptPlan, CancelPlan, ExecutePlan
from mcp_ledger.domain.plans.model import (
    MAX_PLAN_TEXT_BYTES,
    Plan,
    PlanFormError,
    normalise_plan,
    plan_hash,
)
from mcp_ledger.domain.plans.tools import PLAN_SCHEMA_URI, PLAN_TOOLS, REPLAN_TOOL
from mcp_ledger.domain.plans.validation import plan_problems, with_derived_dependencies
from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import (
    BadSessionHeaderError,
    Identity,
    IdentityResolver,
    session_from_headers,
)
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.tools.planners import EndpointPlanner, PlannerError
from mcp_ledger.mcp_api.tools.replanning import replan
from mcp_ledger.mcp_api.tools.sampling import sample_plan
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.view import PlanView
from mcp_ledger.projections.registry.catalog import ToolCatalog

CATCH_UP_SECONDS = 5.0
"""How long an answer waits for the projection to show the caller's own command."""
PLAN_SIZE_FACTOR = 16
"""A plan carries many tasks' parameters: its size limit is this many times a tool call's."""
FINISHED = frozenset(
    {
        "succeeded",
        "completed_with_errors",
        "failed",
        "compensated",
        "compensation_failed",
        "cancelled",
        "timed_out",
    }
)


def plan_json_schema() -> dict[str, Any]:
    """The Plan Object's JSON Schema (the JSON form; the YAML form is described in it)."""
    schema = Plan.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = PLAN_SCHEMA_URI
    schema["description"] = (
        "A plan: tasks calling tools. Parameters may hold whole-value references to upstream output: "
        "{'$ref': 'tasks.A.output', 'path': '/x/0'} (RFC 6901) or '${A.output.x.0}'. Also accepted: "
        "tasks as an object keyed by id, task_id for id, error_handling.on_error, and the YAML form "
        "{nodes: [{id, tool, params, parallel_group}], edges: [{from, to, condition}], "
        "error_handlers: [{node, on_error, compensate: {tool, params}}]}. Conditions: "
        "\"A.output.n > 2 and A.status == 'succeeded'\" (==, !=, <, <=, >, >=, in, and, or, not)."
    )
    return schema


def _text(payload: Any, *, error: bool = False) -> types.CallToolResult:
    if error:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=str(payload))], is_error=True
        )
    text = json.dumps(payload, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=payload
    )


def status_payload(view: PlanView) -> dict[str, Any]:
    """What plan_status returns for a view."""
    return {
        "plan_id": view.plan_id,
        "status": view.status,
        "plan_hash": view.plan_hash,
        "counts": view.counts(),
        "tasks": {
            tid: task.model_dump(mode="json", exclude_none=True, exclude={"dependencies"})
            for tid, task in view.tasks.items()
        },
    }


class PlanTools:
    """Handlers of the plan tools, hooked into the MCP server."""

    def __init__(
        self,
        catalog: Mapping[str, ToolSpec],
        gateway: CommandGateway,
        views: PlanViewStore,
        identities: IdentityResolver,
        *,
        planner: EndpointPlanner | None = None,
        poll_interval: float = 0.05,
        registry: ToolCatalog | None = None,
    ) -> None:
        self._registry = registry
        self._catalog = catalog
        self._gateway = gateway
        self._views = views
        self._identities = identities
        self._planner = planner
        self._poll = poll_interval
        self.specs = {spec.name: spec for spec in (*PLAN_TOOLS, REPLAN_TOOL)}
        self.views = views
        self.planner = planner

    async def call(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Run one plan tool for the caller of `ctx`."""
        name, arguments = params.name, dict(params.arguments or {})
        identity = self._identities.resolve(ctx.request)
        try:
            session_id = session_from_headers(ctx.request)
        except BadSessionHeaderError as error:
            return _text(str(error), error=True)
        if name == "create_plan":
            return await self._create(ctx, params, identity, session_id)
        plan_id = str(arguments["plan_id"])
        common = {
            "tenant": identity.tenant,
            "subject": identity.subject,
            "roles": identity.roles,
            "plan_id": plan_id,
        }
        if name == "replan_plan":
            return await replan(self, ctx, params, identity, session_id)
        if name == "plan_status":
            return await self._status(identity, plan_id, float(arguments.get("wait_seconds", 0)), 0, ctx)
        if name == "cancel_plan":
            cancel = CancelPlan(**common, session_id=session_id, reason=str(arguments.get("reason", "")))
            return await self._send(cancel, lambda seen: self._status(identity, plan_id, 0, seen))
        execute = ExecutePlan(**common, session_id=session_id)
        return await self._send(
            execute,
            lambda seen: self._status(identity, plan_id, float(arguments.get("wait_seconds", 0)), seen, ctx),
        )

    def visible_tools(
        self, identity: Identity, registered: Mapping[str, ToolSpec] | None = None
    ) -> list[ToolSpec]:
        """Tools a plan of this caller may use (planners see only these): the built-ins and
        `registered` (the caller's scope: scope_tools), those its roles allow."""
        catalog = {**registered, **self._catalog} if registered else self._catalog
        return [
            spec
            for spec in catalog.values()
            if not spec.opens_session
            and access_problem(identity.roles, spec.minimum_role, spec.allowed_roles) is None
        ]

    async def scope_tools(self, identity: Identity, session_id: str | None) -> dict[str, ToolSpec]:
        """The registered and upstream tools of the caller's scope (tenant-wide and the
        session's), besides the built-ins: what a planner may be offered and a plan may name."""
        if self._registry is None:
            return {}
        listed = await self._registry.visible(identity.tenant, session_id)
        return {spec.name: spec for spec in listed if spec.name not in self._catalog}

    async def make_plan(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        identity: Identity,
        registered: Mapping[str, ToolSpec] | None = None,
    ) -> dict[str, Any] | types.InputRequiredResult:
        """The raw plan of a create_plan call: given, YAML text, or from a planner; or the
        input_required result asking the client's LLM.

        Raises:
            PlannerError: no plan given and none could be made.
        """
        arguments = dict(params.arguments or {})
        raw = arguments.get("plan")
        if isinstance(raw, str):
            try:
                raw = await load_yaml_off_loop(raw, max_bytes=MAX_PLAN_TEXT_BYTES, what="the plan")
            except DocumentError as error:
                raise PlannerError(str(error)) from None
        if raw is None:
            goal = str(arguments.get("goal", "")).strip()
            if not goal:
                raise PlannerError("give a plan, or a goal for the planner")
            tools = self.visible_tools(identity, registered)

            def problems_of(candidate: dict[str, Any]) -> list[str]:
                return self.check(candidate, identity, registered)[1]

            if self._planner is not None:
                return await self._planner.plan(goal, tools, problems_of)
            return await sample_plan(ctx, params, goal, tools, problems_of)
        if not isinstance(raw, dict):
            raise PlannerError("a plan is a JSON object")
        return raw

    def check(
        self, raw: dict[str, Any], identity: Identity, registered: Mapping[str, ToolSpec] | None = None
    ) -> tuple[Plan | None, list[str]]:
        """The frozen-to-be plan, or every problem with it for this caller; `registered` adds
        the registered and upstream tools of the caller's scope to the built-ins."""
        try:
            plan = with_derived_dependencies(normalise_plan(raw, plan_id=f"plan-{uuid.uuid4().hex[:16]}"))
        except PlanFormError as error:
            return None, error.problems
        catalog = {**registered, **self._catalog} if registered else self._catalog
        problems = plan_problems(plan, catalog, identity.roles)
        problems = problems or plan_parameter_problems(plan, catalog)
        return (None, problems) if problems else (plan, [])

    async def _create(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        identity: Identity,
        session_id: str | None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        arguments = dict(params.arguments or {})
        registered = await self.scope_tools(identity, session_id)
        try:
            raw = await self.make_plan(ctx, params, identity, registered)
        except PlannerError as error:
            return _text(f"invalid_plan: {error}", error=True)
        if isinstance(raw, types.InputRequiredResult):
            return raw
        plan, problems = self.check(raw, identity, registered)
        if plan is None:
            return _text("invalid_plan: " + "; ".join(problems), error=True)
        return await self.accept(plan, identity, session_id, execute=bool(arguments.get("execute", False)))

    async def accept(
        self, plan: Plan, identity: Identity, session_id: str | None, *, execute: bool
    ) -> types.CallToolResult:
        """Send AcceptPlan for a plan checked for this caller; answer with its frozen form."""
        digest = plan_hash(plan)
        command = AcceptPlan(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=session_id,
            plan_id=plan.plan_id,
            plan=plan.model_dump(mode="json"),
            plan_hash=digest,
            execute=execute,
        )

        async def accepted(seen: int) -> types.CallToolResult:
            status = "running" if command.execute else "accepted"
            payload = {"plan_id": plan.plan_id, "plan_hash": digest, "status": status, "plan": command.plan}
            return _text(payload)

        return await self._send(command, accepted)

    async def _send(
        self,
        command: AcceptPlan | ExecutePlan | CancelPlan,
        answer: Callable[[int], Awaitable[types.CallToolResult]],
    ) -> types.CallToolResult:
        try:
            event = await self._gateway.call(command)
        except CommandTimeoutError as error:
            return _text(str(error), error=True)
        if event["event_type"] == "PlanCommandRefused":
            data: Any = event["data"]
            return _text(f"{data['error_code']}: {data['message']}", error=True)
        return await answer(int(str(event.get("position", 0))))

    async def _status(
        self,
        identity: Identity,
        plan_id: str,
        wait_seconds: float,
        seen: int = 0,
        ctx: ServerRequestContext[Any] | None = None,
    ) -> types.CallToolResult:
        """The plan's view; waiting (bounded) for it to end or pause, and for the projection to
        have folded the caller's own command (at global position `seen`), so it is never stale."""
        start, reported = time.monotonic(), -1
        wait_end, catch_up_end = start + wait_seconds, start + (CATCH_UP_SECONDS if seen else 0.0)
        while True:
            view = await self._views.get(identity.tenant, plan_view_id(identity.subject, plan_id))
            if view is not None and view.subject != identity.subject:
                view = None  # the key names the owner; checked again all the same
            caught_up = view is not None and view.last_position >= seen
            done = view is not None and (view.status in FINISHED or view.status == "paused")
            now = time.monotonic()
            if (caught_up and (done or now >= wait_end)) or now >= max(wait_end, catch_up_end):
                break
            if ctx is not None and view is not None:
                reported = await _report_progress(ctx, view, reported)
            await asyncio.sleep(self._poll)
        if view is None:
            return _text(
                "unknown_plan: unknown plan (a plan just created may take a moment to appear)", error=True
            )
        return _text(status_payload(view))


async def _report_progress(ctx: ServerRequestContext[Any], view: PlanView, reported: int) -> int:
    """Send notifications/progress (tasks done of all) when it moved; a no-op unless the
    caller asked for progress and the connection can carry notifications."""
    counts = view.counts()
    done = sum(counts.get(status, 0) for status in ("succeeded", "failed", "skipped", "cancelled"))
    if done != reported:
        await ctx.session.report_progress(
            done, len(view.tasks), f"{view.status}: {done}/{len(view.tasks)} tasks"
        )
    return done
