"""The plan tools' specs: create_plan, execute_plan, plan_status, cancel_plan, replan_plan.

Data only, like domain/tools.py: the handlers are the API's (mcp_api/tools/plans.py and
replanning.py). Kept in the domain so every check that needs the names of the tools the
gateway itself provides (domain/catalog.py) reads them from these specs.
"""

from __future__ import annotations

from typing import Any

from mcp_ledger.domain.tools import ToolSpec

PLAN_SCHEMA_URI = "ledger://schemas/plan"
_PLAN_ID = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,128}$"}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


PLAN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="create_plan",
        title="Create a plan",
        description=(
            "Validate and freeze a multi-step plan (tasks calling this server's tools, with dependencies, "
            "references like '${A.output.x}', retries, timeouts, on_error). Give `plan` (see the resource "
            f"{PLAN_SCHEMA_URI}; YAML text is accepted) or a `goal` for the server's planner. "
            "Set execute=true to start it at once."
        ),
        input_schema=_schema(
            {
                "plan": {"type": ["object", "string"]},
                "goal": {"type": "string", "maxLength": 10000},
                "execute": {"type": "boolean"},
            },
            [],
        ),
        read_only=False,
    ),
    ToolSpec(
        name="execute_plan",
        title="Execute a plan",
        description=(
            "Start an accepted plan. It runs in the background; wait_seconds waits for its end. "
            "A plan with mode 'reactive' runs one task per call, then pauses."
        ),
        input_schema=_schema(
            {"plan_id": _PLAN_ID, "wait_seconds": {"type": "number", "minimum": 0, "maximum": 300}},
            ["plan_id"],
        ),
        read_only=False,
        task_support="optional",  # as a task, the task is the plan run (docs/tasks.md)
    ),
    ToolSpec(
        name="plan_status",
        title="Plan status",
        description="Status of one of your plans: each task's status, attempts, error and output.",
        input_schema=_schema(
            {"plan_id": _PLAN_ID, "wait_seconds": {"type": "number", "minimum": 0, "maximum": 300}},
            ["plan_id"],
        ),
    ),
    ToolSpec(
        name="cancel_plan",
        title="Cancel a plan",
        description="Stop a plan: running tasks are cancelled and nothing else starts.",
        input_schema=_schema(
            {"plan_id": _PLAN_ID, "reason": {"type": "string", "maxLength": 1000}}, ["plan_id"]
        ),
        read_only=False,
    ),
)


REPLAN_TOOL = ToolSpec(
    name="replan_plan",
    title="Replan a failed plan",
    description=(
        "Ask the planner for a new plan after one of your plans failed. It sees only each task's "
        "status and error code, and may use only the failed plan's tools plus approve_new_tools."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "plan_id": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,128}$"},
            "approve_new_tools": {"type": "array", "items": {"type": "string"}, "maxItems": 50},
            "execute": {"type": "boolean"},
        },
        "required": ["plan_id"],
        "additionalProperties": False,
    },
    read_only=False,
)


def plan_tool_specs() -> dict[str, ToolSpec]:
    """The plan tools by name, replan_plan included."""
    return {spec.name: spec for spec in (*PLAN_TOOLS, REPLAN_TOOL)}
