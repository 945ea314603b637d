"""SEP-1686's decision whether a 2025-11-25 call is a task, and its task shapes."""

from __future__ import annotations

from typing import Literal

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.domain.tasks.events import McpTaskCreated
from mcp_ledger.domain.tasks.state import fold
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.tasks.legacy import created, legacy_runs_as_task

Support = Literal["forbidden", "optional", "required"]


def _spec(support: Support) -> ToolSpec:
    return ToolSpec(
        name="t", title="T", description="d", input_schema={"type": "object"}, task_support=support
    )


def test_an_optional_tool_is_a_task_exactly_when_the_client_asks() -> None:
    assert legacy_runs_as_task(_spec("optional"), asked=True) is True
    assert legacy_runs_as_task(_spec("optional"), asked=False) is False


@pytest.mark.parametrize(("support", "asked"), [("forbidden", True), ("required", False)])
def test_a_task_the_tool_cannot_give_or_a_required_one_not_asked_for_is_method_not_found(
    support: Support, asked: bool
) -> None:
    with pytest.raises(MCPError) as refused:
        legacy_runs_as_task(_spec(support), asked=asked)
    assert refused.value.error.code == types.METHOD_NOT_FOUND


def test_a_forbidding_tool_not_asked_for_a_task_runs_synchronously() -> None:
    assert legacy_runs_as_task(_spec("forbidden"), asked=False) is False


def test_the_created_task_has_the_2025_11_25_fields_under_task() -> None:
    state = fold(
        [
            McpTaskCreated(
                task_id="abc",
                tenant="acme",
                subject="alice",
                tool_name="sleep",
                command_id="c1",
                ttl_ms=60_000,
                poll_interval_ms=500,
                created_at=0.0,
            )
        ]
    )
    assert state is not None
    wire = created(state).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire == {
        "task": {
            "taskId": "abc",
            "status": "working",
            "createdAt": "1970-01-01T00:00:00Z",
            "lastUpdatedAt": "1970-01-01T00:00:00Z",
            "ttl": 60_000,
            "pollInterval": 500,
        }
    }
