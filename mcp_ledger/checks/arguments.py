"""Checking tool arguments against a tool's input schema (JSON Schema 2020-12).

Shared by the API edge (refuse before anything is published) and the worker (never trust
the bus). Messages are meant for the agent: they say where and what, never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

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


def argument_problem(
    schema: dict[str, Any], arguments: dict[str, Any], validator: Draft202012Validator | None = None
) -> str | None:
    """None when the arguments fit the schema, else one readable sentence about the worst error.
    A caller checking many calls of one tool may pass that schema's validator, built once."""
    validator = validator or Draft202012Validator(schema)
    error = best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"invalid arguments at {where}: {error.message}"


def argument_size(arguments: dict[str, Any]) -> int:
    """Size in bytes of the arguments as compact JSON."""
    return len(json.dumps(arguments, separators=(",", ":"), ensure_ascii=False).encode())


def plan_parameter_problems(plan: Plan, catalog: Mapping[str, ToolSpec]) -> list[str]:
    """Parameters of a plan's tasks checked against their tools' input schemas, as far as
    they are known before anything runs: a parameter holding a reference is left out (and
    not required); a reference into a tool with an output schema must have a compatible type.
    """
    problems: list[str] = []
    for task in plan.tasks:
        spec = catalog.get(task.tool_name)
        if spec is not None:
            problems += _known_parameter_problems(task, spec, plan, catalog)
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
    problem = argument_problem(schema, literal)
    problems = [f"task {task.id}: {problem}"] if problem else []
    properties = spec.input_schema.get("properties", {})
    for key, value in referenced.items():
        ref = as_reference(value)
        wanted = properties.get(key, {}).get("type") if isinstance(properties, dict) else None
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
