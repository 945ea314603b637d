"""The task shapes on the wire (SEP-2663): the flat `CreateTaskResult` a tools/call returns,
the `DetailedTask` tasks/get returns (the negotiation is in negotiation.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import mcp_types as types

from mcp_ledger.domain.tasks.state import TaskState

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"


class TaskFields(types.Result):
    """What every task answer carries at its top level (no nested `task` wrapper)."""

    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int


class CreateTaskResult(TaskFields):
    result_type: str = "task"


class DetailedTask(TaskFields):
    result_type: str = "complete"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


TASK_NOTIFICATION = "notifications/tasks"


class TaskNotificationParams(types.NotificationParams):
    """SEP-2663's status notification: the task as tasks/get shows it (terminal ones inline
    the result or error)."""

    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    input_requests: dict[str, Any] | None = None


class TaskNotification(types.Notification[TaskNotificationParams, Literal["notifications/tasks"]]):
    method: Literal["notifications/tasks"] = "notifications/tasks"
    params: TaskNotificationParams


def task_notification(state: TaskState, meta: dict[str, Any]) -> TaskNotification:
    """The notification of a task's current state for a listen stream tagged with `meta`."""
    params = TaskNotificationParams(
        **_fields(state),
        result=state.result,
        error=state.error,
        input_requests=state.input_requests,
        _meta=meta,
    )
    return TaskNotification(params=params)


class UpdateTaskRequestParams(types.RequestParams):
    task_id: str
    input_responses: dict[str, Any]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _fields(state: TaskState) -> dict[str, Any]:
    return {
        "task_id": state.task_id,
        "status": state.status,
        "status_message": state.status_message or None,
        "created_at": iso(state.created_at),
        "last_updated_at": iso(state.updated_at),
        "ttl_ms": state.ttl_ms,
        "poll_interval_ms": state.poll_interval_ms,
    }


def created_result(state: TaskState) -> CreateTaskResult:
    return CreateTaskResult(**_fields(state))


def detailed(state: TaskState) -> DetailedTask:
    """tasks/get: a completed task inlines its tool result, a failed one its error."""
    return DetailedTask(
        **_fields(state), result=state.result, error=state.error, input_requests=state.input_requests
    )
