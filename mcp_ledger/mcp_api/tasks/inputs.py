"""tasks/update's decisions: which of the owner's answers go to the worker, and when a task
parked for input has been abandoned by the worker that held its call.

The answers themselves never reach the store: tasks/update publishes them on the reply topic
for the worker (consumers/upstreams/relay/parking.py) and records only the keys it answered
(`McpTaskInputAnswered`), so tasks/get right after it shows what is still open.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mcp_ledger.domain.tasks.events import McpTaskFailed
from mcp_ledger.domain.tasks.state import TaskState

NOT_ANSWERED = -32001
ABANDON_GRACE_S = 10.0
"""How long past its deadline a parked task waits for its worker to record the end itself."""


class InvalidResponsesError(ValueError):
    """An answer to a waiting request is not a JSON object (an elicitation or sampling result)."""


def answerable(state: TaskState, responses: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The responses to requests the task still waits for; others (unknown, already answered,
    or a task not waiting) are ignored, so a repeated tasks/update changes nothing.

    Raises:
        InvalidResponsesError: an answer to a waiting request is not an object.
    """
    if state.status != "input_required" or not isinstance(state.input_requests, dict):
        return {}
    waiting = state.input_requests
    answers: dict[str, dict[str, Any]] = {}
    for key, answer in responses.items():
        if key not in waiting:
            continue
        if not isinstance(answer, dict):
            raise InvalidResponsesError(f"inputResponses[{key!r}] must be an object")
        answers[key] = answer
    return answers


def abandoned(state: TaskState, now: float) -> McpTaskFailed | None:
    """The failure of a task still parked well past its deadline: the worker holding its
    call would have failed it at the deadline, so that worker is gone."""
    deadline = state.input_deadline
    if state.status != "input_required" or deadline is None or now < deadline + ABANDON_GRACE_S:
        return None
    when = datetime.fromtimestamp(deadline, UTC).isoformat()
    message = f"the task's wait for input ended at {when} and the worker holding its call is gone"
    return McpTaskFailed(code=NOT_ANSWERED, message=message, failed_at=now)
