"""The plan-status read model: what plan_status answers, folded from a plan's events.

A view holds the plan's status, each task's status, attempts, error and output, and the
global position of the last event folded in (its checkpoint). It holds outputs, so it is
personal data like a session view: erasure purges it with the rest of the projections.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.events import (
    CompensationFailed,
    CompensationStarted,
    CompensationSucceeded,
    PlanAccepted,
    PlanCancelRequested,
    PlanCompleted,
    PlanPaused,
    PlanStarted,
    PlanStepGranted,
    TaskCancelled,
    TaskFailed,
    TaskRetryScheduled,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)


class TaskView(BaseModel):
    model_config = ConfigDict(frozen=True)

    tool_name: str
    status: str = "pending"
    attempts: int = 0
    error_code: str | None = None
    message: str | None = None
    output: Any = None
    compensation: str | None = None
    dependencies: tuple[str, ...] = ()
    """The ids of the tasks this one waits for: the edges of the plan's DAG."""


class PlanView(BaseModel):
    """One plan as plan_status shows it."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    plan_id: str
    subject: str
    plan_hash: str
    goal: str = ""
    status: str = "accepted"
    """accepted, running, cancelling, then how it ended (see PlanCompleted.status)."""
    tasks: dict[str, TaskView] = Field(default_factory=dict)
    accepted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    last_position: int = 0
    stream_version: int = 0
    """The version in its stream of the last event folded in (see SessionView.stream_version)."""

    def counts(self) -> dict[str, int]:
        """How many tasks are in each status."""
        found: dict[str, int] = {}
        for task in self.tasks.values():
            found[task.status] = found.get(task.status, 0) + 1
        return found


def _task(view: PlanView, task_id: str, **changes: Any) -> dict[str, Any]:
    current = view.tasks.get(task_id)
    if current is None:
        # An erased subject's plan replays with its plan and task ids as placeholders.
        return {}
    return {"tasks": {**view.tasks, task_id: current.model_copy(update=changes)}}


def fold_plan(view: PlanView | None, event: DomainEvent, position: int) -> PlanView | None:
    """The view after one event at a global position (None until the plan is accepted)."""
    if isinstance(event, PlanAccepted):
        tasks = {
            t["id"]: TaskView(tool_name=t["tool_name"], dependencies=tuple(t.get("dependencies") or ()))
            for t in event.plan.get("tasks", [])
        }
        return PlanView(
            tenant=event.tenant,
            plan_id=event.plan_id,
            subject=event.subject,
            plan_hash=event.plan_hash,
            goal=str(event.plan.get("goal", "")),
            tasks=tasks,
            accepted_at=event.accepted_at,
            last_position=position,
        )
    if view is None:
        return None
    changes = _changes(view, event)
    return view.model_copy(update={**changes, "last_position": position})


def _changes(view: PlanView, event: DomainEvent) -> dict[str, Any]:
    if isinstance(event, PlanStarted):
        return {"status": "running", "started_at": event.started_at}
    if isinstance(event, PlanStepGranted):
        return {"status": "running"}
    if isinstance(event, PlanPaused):
        return {"status": "paused"}
    if isinstance(event, PlanCancelRequested):
        return {"status": "cancelling"}
    if isinstance(event, PlanCompleted):
        return {"status": event.status, "finished_at": event.finished_at}
    if isinstance(event, TaskStarted):
        return _task(view, event.task_id, status="running", attempts=event.attempt)
    if isinstance(event, TaskSucceeded):
        return _task(
            view, event.task_id, status="succeeded", output=event.output, error_code=None, message=None
        )
    if isinstance(event, TaskFailed):
        status = "waiting_retry" if event.will_retry else "failed"
        return _task(view, event.task_id, status=status, error_code=event.error_code, message=event.message)
    if isinstance(event, TaskRetryScheduled):
        return {}
    if isinstance(event, TaskSkipped):
        return _task(view, event.task_id, status="skipped", message=event.reason)
    if isinstance(event, TaskCancelled):
        return _task(view, event.task_id, status="cancelled", message=event.reason)
    if isinstance(event, CompensationStarted):
        return _task(view, event.task_id, compensation="running")
    if isinstance(event, CompensationSucceeded):
        return _task(view, event.task_id, compensation="succeeded")
    if isinstance(event, CompensationFailed):
        return _task(view, event.task_id, compensation="failed")
    return {}
