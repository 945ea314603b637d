"""The pure fold of a task's stream into its state, expiry, and the sync-or-task decision.

The first terminal event wins: a result arriving after a cancellation, or a second cancel,
changes nothing, so "cancelled once" and "a cancelled task stays cancelled" hold whatever
order replicas and workers append in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from mcp_ledger.domain.events import JSON, DomainEvent
from mcp_ledger.domain.tasks.events import (
    McpTaskCancelled,
    McpTaskCompleted,
    McpTaskCreated,
    McpTaskFailed,
    McpTaskInputAnswered,
    McpTaskInputRequired,
    McpTaskPurged,
    McpTaskStatusChanged,
)

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
TaskSupport = Literal["forbidden", "optional", "required"]


class TaskConflictError(Exception):
    """Someone else appended to the task stream first: reload and decide again."""


class TaskStreamError(ValueError):
    """A task stream that does not start with McpTaskCreated."""


@dataclass(frozen=True, slots=True)
class TaskState:
    """What tasks/get answers from."""

    task_id: str
    tenant: str
    subject: str
    tool_name: str
    command_id: str
    plan_id: str | None
    status: TaskStatus
    created_at: float
    updated_at: float
    ttl_ms: int | None
    poll_interval_ms: int
    status_message: str = ""
    result: JSON | None = None
    error: JSON | None = None
    input_requests: JSON | None = None
    input_deadline: float | None = None
    cancellations: int = 0
    purged: bool = False

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def expired(self, now: float) -> bool:
        """Whether the ttl, counted from creation, has run out (then the task is purged)."""
        return self.ttl_ms is not None and now >= self.created_at + self.ttl_ms / 1000


def _created(event: McpTaskCreated) -> TaskState:
    return TaskState(
        task_id=event.task_id,
        tenant=event.tenant,
        subject=event.subject,
        tool_name=event.tool_name,
        command_id=event.command_id,
        plan_id=event.plan_id,
        status="working",
        created_at=event.created_at,
        updated_at=event.created_at,
        ttl_ms=event.ttl_ms,
        poll_interval_ms=event.poll_interval_ms,
    )


def apply(state: TaskState, event: DomainEvent) -> TaskState:
    """The state after one event; events after the first terminal one change nothing, but
    a purge ends every task."""
    if isinstance(event, McpTaskPurged):
        return replace(state, purged=True, result=None, error=None, input_requests=None)
    if state.terminal:
        return state
    match event:
        case McpTaskStatusChanged():
            status: TaskStatus = "input_required" if event.status == "input_required" else "working"
            return replace(state, status=status, status_message=event.message, updated_at=event.changed_at)
        case McpTaskInputRequired():
            return _waiting(state, event)
        case McpTaskInputAnswered():
            return _answered(state, event)
        case McpTaskCompleted():
            return replace(
                state,
                status="completed",
                result=event.result,
                input_requests=None,
                updated_at=event.completed_at,
            )
        case McpTaskFailed():
            error: JSON = {"code": event.code, "message": event.message}
            return replace(
                state, status="failed", error=error, input_requests=None, updated_at=event.failed_at
            )
        case McpTaskCancelled():
            return replace(
                state,
                status="cancelled",
                status_message=event.reason,
                input_requests=None,
                updated_at=event.cancelled_at,
                cancellations=state.cancellations + 1,
            )
    return state


def _pending(state: TaskState) -> dict[str, JSON]:
    return dict(state.input_requests) if isinstance(state.input_requests, dict) else {}


def _waiting(state: TaskState, event: McpTaskInputRequired) -> TaskState:
    """Requests are added to those still open; the wait ends with the latest deadline."""
    requests = event.requests if isinstance(event.requests, dict) else {}
    pending = {**_pending(state), **requests}
    deadline = max(state.input_deadline or 0.0, event.expires_at) or None
    return replace(
        state,
        status="input_required",
        input_requests=pending,
        input_deadline=deadline,
        updated_at=event.changed_at,
    )


def _answered(state: TaskState, event: McpTaskInputAnswered) -> TaskState:
    """The answered keys leave; with none left the task is working again."""
    pending = {key: value for key, value in _pending(state).items() if key not in set(event.keys)}
    if pending:
        return replace(state, input_requests=pending, updated_at=event.changed_at)
    return replace(
        state, status="working", input_requests=None, input_deadline=None, updated_at=event.changed_at
    )


def fold(events: Iterable[DomainEvent]) -> TaskState | None:
    """The state of a task stream, None for an empty one.

    Raises:
        TaskStreamError: the first event is not McpTaskCreated.
    """
    state: TaskState | None = None
    for event in events:
        if state is None:
            if not isinstance(event, McpTaskCreated):
                raise TaskStreamError(f"a task stream starts with McpTaskCreated, not {type(event).__name__}")
            state = _created(event)
        else:
            state = apply(state, event)
    return state


class TaskRequiredError(ValueError):
    """A task-required tool called by a client that did not negotiate the extension."""


def runs_as_task(support: TaskSupport, negotiated: bool) -> bool:
    """Whether a call becomes a task: the server decides (SEP-2663), for task-supporting
    tools of a client that negotiated the extension; others run synchronously.

    Raises:
        TaskRequiredError: the tool requires a task and the client cannot receive one.
    """
    if support == "required" and not negotiated:
        raise TaskRequiredError(
            "this tool runs only as a task: declare the io.modelcontextprotocol/tasks extension"
        )
    return negotiated and support != "forbidden"
