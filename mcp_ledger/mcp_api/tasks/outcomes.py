"""How a task ends, decided from what is recorded: its command's terminal event, or a wait
for input that its worker abandoned."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mcp_ledger.domain.tasks.events import McpTaskCompleted, McpTaskFailed
from mcp_ledger.domain.tasks.state import TaskState
from mcp_ledger.mcp_api.tools.results import result_from_event

INTERNAL_ERROR = -32603
NOT_ANSWERED = -32001
ABANDON_GRACE_S = 10.0
"""How long past its deadline a parked task waits for its worker to record the end itself."""


def completion(event: Mapping[str, Any], now: float) -> McpTaskCompleted | McpTaskFailed:
    """The task's end from its command's terminal event: a tool error is still `completed`;
    an upstream that never produced a tool result (a JSON-RPC error, unreachable, timed out)
    is `failed`, as SEP-2663 reserves that status for protocol-level errors."""
    data = event["data"]
    if event["event_type"] == "ToolFailed" and str(data.get("error_code", "")).startswith("upstream_"):
        return McpTaskFailed(
            code=INTERNAL_ERROR, message=f"{data['error_code']}: {data['message']}", failed_at=now
        )
    result = result_from_event(event)
    wire = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    wire.pop("_meta", None)
    return McpTaskCompleted(result=wire, is_error=bool(result.is_error), completed_at=now)


def abandoned(state: TaskState, now: float) -> McpTaskFailed | None:
    """The failure of a task still parked well past its deadline: the worker holding its
    call would have failed it at the deadline, so that worker is gone."""
    deadline = state.input_deadline
    if state.status != "input_required" or deadline is None or now < deadline + ABANDON_GRACE_S:
        return None
    when = datetime.fromtimestamp(deadline, UTC).isoformat()
    message = f"the task's wait for input ended at {when} and the worker holding its call is gone"
    return McpTaskFailed(code=NOT_ANSWERED, message=message, failed_at=now)
