"""Checking tool registrations at every entry point (MCP tool, HTTP, gRPC, manifests).

Parses submitted definitions (nesting bounded first, unknown fields refused), checks their
schemas' shape (schemas.py: loops, dangling references, RE2-incompatible patterns) and
then the JSON Schema 2020-12 meta-schema, then applies the pure registration rules of the
domain. Shared by the API edge (refuse early) and the worker (decides; never trusts the bus).
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from mcp_ledger.checks.documents import MAX_NESTING, nesting_problem
from mcp_ledger.checks.schemas import schema_shape_problems
from mcp_ledger.domain.catalog import RESERVED_TOOL_NAMES
from mcp_ledger.domain.registry.model import ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError, RegistrationPolicy, check_definitions


def schema_problem(schema: Any) -> str | None:
    """None when `schema` is a valid JSON Schema (2020-12), else why not."""
    if not isinstance(schema, dict):
        return "a schema must be a JSON object"
    shape = schema_shape_problems(schema)
    if shape:
        return "; ".join(shape)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        return f"invalid JSON Schema at {where}: {error.message[:300]}"
    except RecursionError:  # the nesting bound above keeps well clear of this; never a 500
        return "the schema nests too deeply to check"
    return None


def _pydantic_problems(error: ValidationError, index: int) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in detail["loc"]) or "(root)"
        problems.append(f"tool #{index}: {where}: {detail['msg']}")
    return problems


def parse_definitions(raw: Any) -> list[ToolDefinition]:
    """Definitions from JSON-ready data (a list of objects).

    Raises:
        RegistrationError: not a list, or an item is not a valid definition.
    """
    if not isinstance(raw, list):
        raise RegistrationError(["tools must be a list of tool definitions"])
    definitions, problems = [], []
    for index, item in enumerate(raw):
        deep = nesting_problem(item, MAX_NESTING, what=f"tool #{index}")
        if deep is not None:
            problems.append(deep)
            continue
        try:
            definitions.append(ToolDefinition.model_validate(item))
        except ValidationError as error:
            problems.extend(_pydantic_problems(error, index))
    if problems:
        raise RegistrationError(problems)
    return definitions


def reserved_name_problems(definitions: list[ToolDefinition]) -> list[str]:
    """A problem for every definition taking the name of a tool the gateway provides: such a
    tool would shadow (or be shadowed by) the gateway's own, wherever it is registered."""
    return [
        f"{d.name}: the name is reserved for a built-in tool of the gateway"
        for d in definitions
        if d.name in RESERVED_TOOL_NAMES
    ]


def check_registration(definitions: list[ToolDefinition], policy: RegistrationPolicy) -> None:
    """Meta-schema checks, then the domain's registration rules.

    Raises:
        RegistrationError: with every problem found; nothing may be registered.
    """
    problems = reserved_name_problems(definitions)
    for definition in definitions:
        for label, schema in (
            ("input_schema", definition.input_schema),
            ("output_schema", definition.output_schema),
        ):
            problem = None if schema is None else schema_problem(schema)
            if problem is not None:
                problems.append(f"{definition.name}: {label}: {problem}")
    try:
        check_definitions(definitions, policy)
    except RegistrationError as error:
        problems.extend(error.problems)
    if problems:
        raise RegistrationError(problems)
