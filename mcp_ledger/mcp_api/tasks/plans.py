"""A plan run as an MCP task: the task follows the plan, it does not run it.

The plan executor (consumers/plans) already runs a plan durably; the task is a window on that
run. Its status and progress are read from the caller's own plan view (the plan-status
projection, keyed by the owner), and it ends when the plan ends: a plan that ran to its end
(succeeded or completed_with_errors) completes with plan_status's payload as its result, one
that failed, was compensated or timed out completes with the same payload and `isError`
(a tool error, not a protocol failure), a cancelled plan cancels the task. This module only
maps a view to the task's end or progress; it appends nothing itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.domain.tasks.events import McpTaskCancelled, McpTaskCompleted
from mcp_ledger.mcp_api.tools.plans import status_payload
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.view import PlanView

SUCCEEDED = frozenset({"succeeded", "completed_with_errors"})
UNSUCCESSFUL = frozenset({"failed", "compensated", "compensation_failed", "timed_out"})
_DONE_STEPS = ("succeeded", "failed", "skipped", "cancelled")


def progress(view: PlanView) -> str:
    """The plan's progress as a status message: "3/7 steps" (and the plan's status when it
    is not simply running)."""
    counts = view.counts()
    done = sum(counts.get(status, 0) for status in _DONE_STEPS)
    steps = f"{done}/{len(view.tasks)} steps"
    return steps if view.status == "running" else f"{view.status}: {steps}"


def _result(payload: Mapping[str, Any], *, error: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "content": [{"type": "text", "text": json.dumps(payload, ensure_ascii=False)}],
        "structuredContent": dict(payload),
    }
    if error:
        result["isError"] = True
    return result


def plan_end(view: PlanView, now: float) -> DomainEvent | None:
    """The event that ends the task of this plan run, None while the plan runs (or pauses)."""
    if view.status == "cancelled":
        return McpTaskCancelled(reason="the plan was cancelled", cancelled_at=now)
    if view.status in SUCCEEDED or view.status in UNSUCCESSFUL:
        error = view.status in UNSUCCESSFUL
        return McpTaskCompleted(
            result=_result(status_payload(view), error=error), is_error=error, completed_at=now
        )
    return None


def refused(outcome: Mapping[str, Any], now: float) -> McpTaskCompleted | None:
    """The task's end when the command that started the plan was refused (unknown plan, not
    the caller's, already started): a tool error, as execute_plan answers it synchronously."""
    if outcome.get("event_type") != "PlanCommandRefused":
        return None
    data: Any = outcome.get("data") or {}
    text = f"{data.get('error_code')}: {data.get('message')}"
    result = {"content": [{"type": "text", "text": text}], "isError": True}
    return McpTaskCompleted(result=result, is_error=True, completed_at=now)


class PlanRuns:
    """The caller's plan views, read under the owner's key (another subject's plan of the same
    id is another view)."""

    def __init__(self, views: PlanViewStore) -> None:
        self._views = views

    async def view(self, tenant: str, subject: str, plan_id: str) -> PlanView | None:
        view = await self._views.get(tenant, plan_view_id(subject, plan_id))
        return view if view is not None and view.subject == subject else None
