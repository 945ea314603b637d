"""The events of an MCP task's stream (streams.task_stream: tenant, owner tag, task id).

Named `McpTask...` so they never clash with the plan executor's `TaskStarted`/`TaskFailed`
(domain/plans/events.py), which are a plan's steps, not MCP tasks. Every caller string
(results, messages, input requests) is `Personal` and sealed with the owner's data key; ids,
times, codes and the catalog tool name stay readable (domain/personal.NOT_PERSONAL).
"""

from __future__ import annotations

from mcp_ledger.domain.events import EVENT_TYPES, JSON, DomainEvent
from mcp_ledger.domain.personal import Personal


class McpTaskCreated(DomainEvent):
    """The gateway accepted a call as a task; `command_id` is the CallTool (or ExecutePlan)
    command that does the work, so the outcome can be found by any replica."""

    task_id: str
    tenant: str
    subject: str
    tool_name: str
    command_id: str
    session_id: str | None = None
    plan_id: str | None = None
    ttl_ms: int | None
    poll_interval_ms: int
    created_at: float


class McpTaskStatusChanged(DomainEvent):
    """A non-terminal status change (back to working after input, or a progress message)."""

    status: str
    message: Personal[str] = ""
    changed_at: float


class McpTaskInputRequired(DomainEvent):
    """The task's upstream asked for input: `requests` (key -> the request, `method` and
    `params`) are added to what the task waits for, answered through tasks/update until
    `expires_at`. Keys are minted by the worker that holds the call (unguessable), so
    requests of concurrent rounds never collide and the events commute."""

    requests: Personal[JSON]
    expires_at: float = 0.0
    changed_at: float


class McpTaskInputAnswered(DomainEvent):
    """The owner's tasks/update answered these keys (the answers went to the worker, never
    into the store); the task is working again once no request is left."""

    keys: list[str]
    changed_at: float


class McpTaskCompleted(DomainEvent):
    """The tool ran; its result (possibly `isError`) is kept until the ttl ends."""

    result: Personal[JSON]
    is_error: bool
    completed_at: float


class McpTaskFailed(DomainEvent):
    """A protocol-level failure (the call never produced a tool result)."""

    code: int
    message: Personal[str]
    failed_at: float


class McpTaskCancelled(DomainEvent):
    """The owner cancelled the task before it ended; recorded once."""

    reason: Personal[str] = ""
    cancelled_at: float


class McpTaskPurged(DomainEvent):
    """The ttl ran out and the task's own data key was destroyed: its content is unreadable
    and the task answers as unknown. Appended once (the stream's optimistic concurrency)."""

    purged_at: float


TASK_EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        McpTaskCreated,
        McpTaskStatusChanged,
        McpTaskInputRequired,
        McpTaskInputAnswered,
        McpTaskCompleted,
        McpTaskFailed,
        McpTaskCancelled,
        McpTaskPurged,
    )
}
EVENT_TYPES.update(TASK_EVENT_TYPES)
