"""tasks/update's decision: which of the owner's answers go to the worker holding the call.

The answers themselves never reach the store: tasks/update publishes them on the reply topic
for the worker (consumers/upstreams/relay/parking.py) and records only the keys it answered
(`McpTaskInputAnswered`), so tasks/get right after it shows what is still open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp_ledger.domain.tasks.state import TaskState


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
