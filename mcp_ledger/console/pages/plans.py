"""The Plans page: the tenant's plans with their status, one plan's DAG with each task's
state (live over SSE while it runs), and cancelling a plan.

Plans are found from the tenant's PlanAccepted events (the audit log), their state from the
plan views, always looked up under the viewer's tenant: a view id names the owner and the
plan, so no id reaches another tenant's plan. Task outputs are shown only to the plan's
owner; everyone else sees that there is one. Cancelling is the owner's (an admin) and is the
same CancelPlan command the `cancel_plan` tool sends, so the worker checks it like any call.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mcp_ledger.console.access import Viewer
from mcp_ledger.console.dag import layout
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.pages.filters import latest
from mcp_ledger.console.rendering import BASE, Pages
from mcp_ledger.domain.commands import CancelPlan
from mcp_ledger.domain.streams import parse_plan_stream, subject_tag
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.mcp_api.gateway import CommandTimeoutError
from mcp_ledger.mcp_api.tools.plans import FINISHED
from mcp_ledger.producers.ports import BusError
from mcp_ledger.projections.plans.view import PlanView

LIVE_SECONDS = 600.0
"""How long one live stream runs before the browser reconnects (EventSource does by itself)."""
LISTED = 200


def live_state(view: PlanView, viewer: Viewer) -> dict[str, Any]:
    """What the live script needs: the plan's status and each box's state, by position."""
    tasks = {}
    for number, task in enumerate(view.tasks.values()):
        tasks[f"task-{number}"] = {
            "status": task.status,
            "attempts": task.attempts,
            "compensation": task.compensation or "",
            "output": "yes" if task.output is not None else "",
        }
    return {"status": view.status, "counts": view.counts(), "tasks": tasks, "position": view.last_position}


def output_text(view: PlanView, viewer: Viewer, output: Any) -> str | None:
    """A task's output as the viewer may see it: opened for the plan's owner only."""
    if output is None:
        return None
    if view.subject != viewer.identity.subject:
        return "[sealed: only the plan's owner opens its outputs]"
    return json.dumps(output, ensure_ascii=False, indent=2)[:20_000]


def plans_routes(pages: Pages, deps: ConsoleDeps) -> list[Route]:
    async def find(viewer: Viewer, tag: str, plan_id: str) -> PlanView | None:
        view = await deps.plans.get(viewer.identity.tenant, f"{tag}:{plan_id}")
        if view is None or view.tenant != viewer.identity.tenant or subject_tag(view.subject) != tag:
            return None
        return view

    async def listing(request: Request, viewer: Viewer) -> Response:
        filters = AuditFilters(event_types=("PlanAccepted",))
        rows = await latest(deps.audit, viewer.identity.tenant, filters, LISTED)
        plans: list[tuple[str, PlanView]] = []
        for row in reversed(rows):
            name = parse_plan_stream(str(row["stream_id"]))
            if name is None or name.owner_tag is None:
                continue
            view = await find(viewer, name.owner_tag, name.plan_id)
            if view is not None:
                plans.append((name.owner_tag, view))
        return pages.render(request, "plans.html", viewer, page="plans", plans=plans)

    async def one(request: Request, viewer: Viewer) -> Response:
        tag, plan_id = request.path_params["tag"], request.path_params["plan_id"]
        view = await find(viewer, tag, plan_id)
        if view is None:
            return pages.refuse(request, viewer, 404, "No such plan in your tenant.")
        outputs = {task_id: output_text(view, viewer, task.output) for task_id, task in view.tasks.items()}
        return pages.render(
            request,
            "plan.html",
            viewer,
            page="plans",
            view=view,
            tag=tag,
            drawing=layout(view.tasks),
            outputs=outputs,
            finished=view.status in FINISHED,
            may_cancel=viewer.may_act and view.subject == viewer.identity.subject,
            notice=request.query_params.get("notice", "")[:200],
        )

    async def live(request: Request, viewer: Viewer) -> Response:
        tag, plan_id = request.path_params["tag"], request.path_params["plan_id"]

        async def stream() -> AsyncIterator[str]:
            sent, ends = -1, time.monotonic() + LIVE_SECONDS
            while time.monotonic() < ends:
                view = await find(viewer, tag, plan_id)
                if view is None:
                    yield "event: gone\ndata: {}\n\n"
                    return
                if view.last_position != sent:
                    sent = view.last_position
                    yield f"event: plan\ndata: {json.dumps(live_state(view, viewer))}\n\n"
                if view.status in FINISHED:
                    yield "event: end\ndata: {}\n\n"
                    return
                await deps.changes.wait(1.0)

        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def cancel(request: Request, viewer: Viewer) -> Response:
        tag, plan_id = request.path_params["tag"], request.path_params["plan_id"]
        view = await find(viewer, tag, plan_id)
        if view is None or view.subject != viewer.identity.subject:
            return pages.refuse(request, viewer, 403, "Only the plan's owner can cancel it.")
        identity = viewer.identity
        command = CancelPlan(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            plan_id=view.plan_id,
            reason="cancelled from the console",
        )
        try:
            event = await deps.gateway.call(command)
        except (CommandTimeoutError, BusError):
            notice = "The cancellation was sent; its outcome has not arrived yet."
        else:
            data = event.get("data")
            notice = "Cancelling."
            if event.get("event_type") == "PlanCommandRefused" and isinstance(data, dict):
                notice = f"Refused: {data.get('message')}"
        target = f"{BASE}/plans/{quote(tag)}/{quote(plan_id, safe='')}?{urlencode({'notice': notice})}"
        return RedirectResponse(target, status_code=303)

    return [
        Route("/plans", pages.guard(listing), methods=["GET"]),
        Route("/plans/{tag}/{plan_id}", pages.guard(one), methods=["GET"]),
        Route("/plans/{tag}/{plan_id}/live", pages.guard(live), methods=["GET"]),
        Route("/plans/{tag}/{plan_id}/cancel", pages.guard(cancel, admin=True), methods=["POST"]),
    ]
