"""Validation of a plan before anything runs, and the dependencies it implies.

Owns: unique task ids, tools that exist and that the caller may call (domain.access),
references and conditions that point upstream only (each adds a dependency), an acyclic
graph (with the cycle spelled out), and a topological order. Does not check parameters
against JSON Schemas (argument_check.py does, outside the pure domain).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection, Mapping

from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.plans.conditions import ConditionError, parse_condition, tasks_read
from mcp_ledger.domain.plans.model import Plan, PlanTask
from mcp_ledger.domain.plans.refs import PlanReferenceError, references_in
from mcp_ledger.domain.tools import ToolSpec


def implied_dependencies(task: PlanTask) -> tuple[list[str], list[str]]:
    """(task ids the task's parameters and condition read, problems found on the way)."""
    found: list[str] = []
    problems: list[str] = []
    try:
        found += [ref.task_id for ref in references_in(task.parameters)]
    except PlanReferenceError as error:
        problems.append(f"task {task.id}: {error}")
    if task.condition is not None:
        try:
            found += sorted(tasks_read(parse_condition(task.condition)))
        except ConditionError as error:
            problems.append(f"task {task.id}: condition {task.condition!r}: {error}")
    return found, problems


def with_derived_dependencies(plan: Plan) -> Plan:
    """The plan with every task's read tasks added to its dependencies (declared ones first)."""
    tasks = []
    for task in plan.tasks:
        implied, _ = implied_dependencies(task)
        merged = list(dict.fromkeys([*task.dependencies, *implied]))
        tasks.append(task.model_copy(update={"dependencies": tuple(merged)}))
    return plan.model_copy(update={"tasks": tuple(tasks)})


def find_cycle(plan: Plan) -> list[str] | None:
    """One dependency cycle as a closed path of task ids, None when the graph is acyclic."""
    deps = {task.id: task.dependencies for task in plan.tasks}
    children_of = {tid: [d for d in found if d in deps] for tid, found in deps.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in deps:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            children = children_of[node]
            if index < len(children):
                stack.append((node, index + 1))
                child = children[index]
                if state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if child not in state:
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def topological_order(plan: Plan) -> list[str]:
    """Task ids so that every task comes after its dependencies (ties in plan order).

    Raises:
        ValueError: the plan has a cycle.
    """
    position = {task.id: index for index, task in enumerate(plan.tasks)}
    waiting = {task.id: len(set(task.dependencies)) for task in plan.tasks}
    dependents: dict[str, list[str]] = {task.id: [] for task in plan.tasks}
    for task in plan.tasks:
        for dep in set(task.dependencies):
            dependents[dep].append(task.id)
    ready = [(position[tid], tid) for tid, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, current = heapq.heappop(ready)
        order.append(current)
        for child in dependents[current]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) != len(plan.tasks):
        raise ValueError("the plan has a dependency cycle")
    return order


def plan_problems(plan: Plan, catalog: Mapping[str, ToolSpec], roles: Collection[str]) -> list[str]:
    """Every reason the caller may not run this plan; empty when it may. Expects the plan
    after with_derived_dependencies."""
    problems: list[str] = []
    ids = [task.id for task in plan.tasks]
    duplicates = sorted(tid for tid, count in Counter(ids).items() if count > 1)
    if duplicates:
        problems.append("task ids must be unique: " + ", ".join(duplicates))
    known = set(ids)
    for task in plan.tasks:
        problems += _tool_problems(task.id, task.tool_name, catalog, roles)
        if task.compensate is not None:
            problems += _tool_problems(f"{task.id} (compensate)", task.compensate.tool_name, catalog, roles)
        problems += implied_dependencies(task)[1]
        for dep in task.dependencies:
            if dep == task.id:
                problems.append(f"task {task.id}: depends on itself")
            elif dep not in known:
                problems.append(f"task {task.id}: depends on or reads unknown task {dep!r}")
        problems += _compensation_problems(task)
    if not problems:
        cycle = find_cycle(plan)
        if cycle is not None:
            problems.append("dependency cycle: " + " -> ".join(cycle))
    return problems


def _tool_problems(
    where: str, tool_name: str, catalog: Mapping[str, ToolSpec], roles: Collection[str]
) -> list[str]:
    spec = catalog.get(tool_name)
    if spec is None:
        return [f"task {where}: unknown tool {tool_name!r}"]
    if spec.opens_session:
        return [f"task {where}: {tool_name} cannot run inside a plan"]
    denied = access_problem(roles, spec.minimum_role, spec.allowed_roles)
    return [f"task {where}: {tool_name}: {denied}"] if denied else []


def _compensation_problems(task: PlanTask) -> list[str]:
    if task.compensate is None:
        return []
    try:
        reads = {ref.task_id for ref in references_in(task.compensate.parameters)}
    except PlanReferenceError as error:
        return [f"task {task.id} (compensate): {error}"]
    allowed = {task.id, *task.dependencies}
    return [
        f"task {task.id} (compensate): may read only its own task and its dependencies, not {tid!r}"
        for tid in sorted(reads - allowed)
    ]
