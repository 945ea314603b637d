"""Checking tool arguments against a tool's input schema (JSON Schema 2020-12).

Shared by the API edge (refuse before anything is published) and the worker (never trust
the bus). Messages are meant for the agent: they say where and what, never a stack trace.
Every check is bounded: arguments may nest MAX_NESTING deep, the schema runs on the
linear-time, step-metered validator (validator.py), and `check_arguments` moves a check
that outgrows a few milliseconds off the event loop, so one tenant's costly schema cannot
stall the others' calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from mcp_ledger.checks.documents import MAX_NESTING, nesting_problem
from mcp_ledger.checks.validator import (
    MAX_CHECK_STEPS,
    CheckTooCostlyError,
    CompiledSchema,
    compile_schema,
    step_budget,
)
from mcp_ledger.domain.plans.model import Plan, PlanTask
from mcp_ledger.domain.plans.refs import (
    PlanReferenceError,
    Reference,
    as_reference,
    parse_pointer,
    references_in,
)
from mcp_ledger.domain.tools import ToolSpec

DEFAULT_MAX_ARGUMENT_BYTES = 64 * 1024
INLINE_STEPS = 5_000
"""Steps a check may take on the event loop (about a millisecond); past them it restarts
in a worker thread with the whole budget."""
MAX_MESSAGE_CHARS = 500


def _short(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"


def _problem(
    schema: dict[str, Any], arguments: dict[str, Any], compiled: CompiledSchema | None
) -> str | None:
    """As argument_problem, spending from the current step budget (CheckTooCostlyError escapes)."""
    deep = nesting_problem(arguments, MAX_NESTING, what="the arguments")
    if deep is not None:
        return f"invalid arguments: {deep}"
    try:
        error = best_match((compiled or compile_schema(schema)).errors(arguments))
    except RecursionError:
        return "invalid arguments: they nest too deeply for this tool's schema"
    except Unresolvable as unresolvable:
        return f"invalid arguments: the tool's schema has a broken reference: {unresolvable}"
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return _short(f"invalid arguments at {where}: {error.message}")


def _too_costly(error: CheckTooCostlyError) -> str:
    return f"invalid arguments: {error}; simplify the arguments or the tool's schema"


def argument_problem(
    schema: dict[str, Any], arguments: dict[str, Any], compiled: CompiledSchema | None = None
) -> str | None:
    """None when the arguments fit the schema, else one readable sentence about the worst error.
    A caller checking many calls of one tool may pass that schema's compiled form, built once.
    Bounded: too deep or too costly to check is a problem too, never an exception."""
    try:
        with step_budget(MAX_CHECK_STEPS):
            return _problem(schema, arguments, compiled)
    except CheckTooCostlyError as error:
        return _too_costly(error)


async def check_arguments(
    schema: dict[str, Any], arguments: dict[str, Any], compiled: CompiledSchema | None = None
) -> str | None:
    """argument_problem without blocking the event loop: a check that needs more than
    INLINE_STEPS starts again in a worker thread."""
    try:
        with step_budget(INLINE_STEPS):
            return _problem(schema, arguments, compiled)
    except CheckTooCostlyError:
        return await asyncio.to_thread(argument_problem, schema, arguments, compiled)


def argument_size(arguments: dict[str, Any]) -> int:
    """Size in bytes of the arguments as compact JSON."""
    return len(json.dumps(arguments, separators=(",", ":"), ensure_ascii=False).encode())


def plan_parameter_problems(plan: Plan, catalog: Mapping[str, ToolSpec]) -> list[str]:
    """Parameters of a plan's tasks checked against their tools' input schemas, as far as
    they are known before anything runs: a parameter holding a reference is left out (and
    not required); a reference into a tool with an output schema must have a compatible type.
    """
    problems: list[str] = []
    try:
        # One budget for the whole plan: 5,000 tasks may not cost 5,000 budgets.
        with step_budget(MAX_CHECK_STEPS):
            for task in plan.tasks:
                spec = catalog.get(task.tool_name)
                if spec is not None:
                    problems += _known_parameter_problems(task, spec, plan, catalog)
    except CheckTooCostlyError as error:
        problems.append(f"the plan's parameters: {_too_costly(error)}")
    return problems


def _known_parameter_problems(
    task: PlanTask, spec: ToolSpec, plan: Plan, catalog: Mapping[str, ToolSpec]
) -> list[str]:
    literal: dict[str, Any] = {}
    referenced: dict[str, Any] = {}
    for key, value in task.parameters.items():
        try:
            has_refs = any(True for _ in references_in(value))
        except PlanReferenceError:
            return []  # reported by the plan validation
        (referenced if has_refs else literal)[key] = value
    schema = dict(spec.input_schema)
    if isinstance(schema.get("required"), list):
        schema["required"] = [name for name in schema["required"] if name not in referenced]
    problem = _problem(schema, literal, None)
    problems = [f"task {task.id}: {problem}"] if problem else []
    properties = spec.input_schema.get("properties", {})
    for key, value in referenced.items():
        ref = as_reference(value)
        declared = properties.get(key) if isinstance(properties, dict) else None
        wanted = declared.get("type") if isinstance(declared, dict) else None
        got = _output_type(ref, plan, catalog) if ref is not None else None
        if isinstance(wanted, str) and isinstance(got, str) and not _compatible(got, wanted):
            problems.append(f"task {task.id}: parameter {key!r} wants {wanted} but its reference gives {got}")
    return problems


def _output_type(ref: Reference, plan: Plan, catalog: Mapping[str, ToolSpec]) -> str | None:
    try:
        source = catalog.get(plan.task(ref.task_id).tool_name)
        tokens = parse_pointer(ref.pointer)
    except (KeyError, PlanReferenceError):
        return None
    schema: Any = source.output_schema if source is not None else None
    for token in tokens:
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            return None
        schema = schema["properties"].get(token)
    found = schema.get("type") if isinstance(schema, dict) else None
    return found if isinstance(found, str) else None


def _compatible(got: str, wanted: str) -> bool:
    return got == wanted or (got == "integer" and wanted == "number")
