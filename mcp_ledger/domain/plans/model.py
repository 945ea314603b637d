"""The Plan Object: one frozen model for the JSON form and the YAML form of a plan.

Owns the shapes (Plan, PlanTask, RetryPolicy, Compensation), the normalisation of both
input forms into them (every level type-checked: a malformed shape such as `edges: 5` is a
PlanFormError that names it, never a TypeError), and the content hash that freezes an
accepted plan. Does not parse YAML (the API hands dicts in, from checks/yaml_documents.py),
check tools or references (validation.py) or run anything (consumers/plans/executor.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

TASK_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
PLAN_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
MAX_TASKS = 5000
MAX_PLAN_TEXT_BYTES = 1024 * 1024
"""A plan written as YAML (or a planner's answer) is refused past this size, before parsing."""

OnError = Literal["fail", "continue", "compensate"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Frozen):
    """Attempts of a task: exponential (or fixed) backoff with jitter, in seconds."""

    max_attempts: int = Field(1, ge=1, le=20)
    backoff: Literal["exponential", "fixed"] = "exponential"
    initial: float = Field(0.1, ge=0, le=3600)
    max: float = Field(10.0, ge=0, le=3600)


class Compensation(_Frozen):
    """The call that undoes a succeeded task when the plan compensates."""

    tool_name: str = Field(min_length=1, max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict)


class PlanTask(_Frozen):
    """One node of the plan: a tool call with its parameters and how it may fail."""

    id: str = Field(pattern=TASK_ID_PATTERN)
    tool_name: str = Field(min_length=1, max_length=128)
    description: str = Field("", max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    on_error: OnError = "fail"
    retry: RetryPolicy = RetryPolicy()
    timeout: float | None = Field(None, gt=0, le=86400)
    condition: str | None = Field(None, max_length=1000)
    """Runs the task only when true (tiny grammar, see plan_conditions.py); else skipped."""
    compensate: Compensation | None = None
    parallel_group: str | None = Field(None, max_length=128)


class Plan(_Frozen):
    """A whole plan, normalised: tasks in the order given, dependencies explicit."""

    plan_id: str = Field(pattern=PLAN_ID_PATTERN)
    goal: str = Field("", max_length=10000)
    tasks: tuple[PlanTask, ...] = Field(min_length=1, max_length=MAX_TASKS)
    max_parallel_tasks: int = Field(8, ge=1, le=1000)
    timeout: float | None = Field(None, gt=0, le=7 * 86400)
    mode: Literal["batch", "reactive"] = "batch"
    """reactive: one task starts per step the caller grants (execute_plan), then the plan pauses."""
    _index: dict[str, PlanTask] | None = PrivateAttr(None)

    @property
    def tool_names(self) -> frozenset[str]:
        """Every tool the plan names, compensations included."""
        named = {task.tool_name for task in self.tasks}
        return frozenset(named | {t.compensate.tool_name for t in self.tasks if t.compensate is not None})

    def task(self, task_id: str) -> PlanTask:
        """The task with this id.

        Raises:
            KeyError: no such task.
        """
        if self._index is None:
            self._index = {task.id: task for task in self.tasks}
        return self._index[task_id]


class PlanFormError(ValueError):
    """The input is not a plan in either form; `problems` are readable sentences."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def canonical_json(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: Plan) -> str:
    """sha256 of the plan's canonical JSON: what was accepted is what runs."""
    return "sha256:" + hashlib.sha256(canonical_json(plan.model_dump(mode="json")).encode()).hexdigest()


def normalise_plan(raw: dict[str, Any], *, plan_id: str | None = None) -> Plan:
    """A Plan from the JSON form (`tasks`) or the YAML form (`nodes`, `edges`, `error_handlers`).

    Raises:
        PlanFormError: the input fits neither form.
    """
    if not isinstance(raw, dict):
        raise PlanFormError(["a plan is a JSON object"])
    if "nodes" in raw:
        raw = _from_graph_form(raw)
    elif isinstance(raw.get("tasks"), dict):
        raw = {**raw, "tasks": _keyed_tasks(raw["tasks"])}
    if plan_id is not None and not raw.get("plan_id"):
        raw = {**raw, "plan_id": plan_id}
    try:
        return Plan.model_validate(_task_aliases(raw))
    except ValidationError as error:
        raise PlanFormError([_readable(detail) for detail in error.errors()[:10]]) from None


def _keyed_tasks(tasks: dict[Any, Any]) -> list[dict[str, Any]]:
    """`tasks` written as an object keyed by task id."""
    bad = [str(key) for key, value in tasks.items() if not isinstance(value, dict)]
    if bad:
        raise PlanFormError([f"tasks.{key}: a task is an object" for key in bad[:10]])
    return [{"id": key, **value} for key, value in tasks.items()]


def _readable(detail: Any) -> str:
    where = "/".join(str(part) for part in detail["loc"]) or "(root)"
    return f"{where}: {detail['msg']}"


def _task_aliases(raw: dict[str, Any]) -> dict[str, Any]:
    """Accepts the brief's spellings: task_id, error_handling.on_error."""
    tasks = raw.get("tasks")
    if not isinstance(tasks, list):
        return raw
    fixed = []
    for task in tasks:
        if isinstance(task, dict):
            task = dict(task)
            if "task_id" in task and "id" not in task:
                task["id"] = task.pop("task_id")
            handling = task.pop("error_handling", None)
            if isinstance(handling, dict):
                task.setdefault("on_error", handling.get("on_error", "fail"))
                if "compensate" in handling:
                    task.setdefault("compensate", handling["compensate"])
        fixed.append(task)
    return {**raw, "tasks": fixed}


def _listed(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise PlanFormError([f"{key}: a list, not {type(value).__name__}"])
    return value


def _node_task(index: int, node: Any) -> dict[str, Any]:
    if not isinstance(node, dict) or not isinstance(node.get("id"), str):
        raise PlanFormError([f"nodes[{index}]: every node is an object with a string id"])
    dependencies = node.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise PlanFormError([f"nodes[{index}].dependencies: a list of node ids"])
    task = {k: v for k, v in node.items() if k not in {"tool", "params"}}
    task.setdefault("tool_name", node.get("tool"))
    task.setdefault("parameters", node.get("params", {}))
    task["dependencies"] = list(dependencies)
    return task


def _from_graph_form(raw: dict[str, Any]) -> dict[str, Any]:
    """The YAML form as the JSON form: edges become dependencies (conditions AND-ed side by
    side, so many edges never nest deeper), error handlers become on_error and compensate.
    Every level is type-checked here: a wrong shape is a PlanFormError naming it."""
    tasks: dict[str, dict[str, Any]] = {}
    for index, node in enumerate(_listed(raw, "nodes")):
        task = _node_task(index, node)
        tasks[task["id"]] = task
    conditions: dict[str, list[str]] = {}
    for index, edge in enumerate(_listed(raw, "edges")):
        _add_edge(tasks, conditions, index, edge)
    for task_id, found in conditions.items():
        own = tasks[task_id].get("condition")
        parts = ([own] if isinstance(own, str) else []) + found
        tasks[task_id]["condition"] = parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)
    for index, handler in enumerate(_listed(raw, "error_handlers")):
        _add_handler(tasks, index, handler)
    rest = {k: v for k, v in raw.items() if k not in {"nodes", "edges", "error_handlers"}}
    return {**rest, "tasks": list(tasks.values())}


def _add_edge(
    tasks: dict[str, dict[str, Any]], conditions: dict[str, list[str]], index: int, edge: Any
) -> None:
    joins = isinstance(edge, dict) and isinstance(edge.get("from"), str) and isinstance(edge.get("to"), str)
    if not joins or edge["to"] not in tasks:
        raise PlanFormError([f"edges[{index}]: must join two node ids (from, to)"])
    target = tasks[edge["to"]]
    if edge["from"] not in target["dependencies"]:
        target["dependencies"].append(edge["from"])
    condition = edge.get("condition")
    if condition is not None and not isinstance(condition, str):
        raise PlanFormError([f"edges[{index}].condition: a string, not {type(condition).__name__}"])
    if condition is not None:
        conditions.setdefault(edge["to"], []).append(condition)


def _add_handler(tasks: dict[str, dict[str, Any]], index: int, handler: Any) -> None:
    if (
        not isinstance(handler, dict)
        or not isinstance(handler.get("node"), str)
        or handler["node"] not in tasks
    ):
        raise PlanFormError([f"error_handlers[{index}]: must name a node"])
    task = tasks[handler["node"]]
    compensate = handler.get("compensate")
    if compensate is not None and not isinstance(compensate, dict):
        raise PlanFormError([f"error_handlers[{index}].compensate: an object with tool_name and parameters"])
    if isinstance(compensate, dict):
        task["compensate"] = {
            "tool_name": compensate.get("tool_name", compensate.get("tool")),
            "parameters": compensate.get("parameters", compensate.get("params", {})),
        }
    task["on_error"] = handler.get("on_error", "compensate" if compensate else "fail")
    if "retry" in handler:
        task["retry"] = handler["retry"]
