"""Checking tool arguments against a tool's input schema (JSON Schema 2020-12).

Shared by the API edge (refuse before anything is published) and the worker (never trust
the bus). Messages are meant for the agent: they say where and what, never a stack trace.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

DEFAULT_MAX_ARGUMENT_BYTES = 64 * 1024


def argument_problem(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """None when the arguments fit the schema, else one readable sentence about the worst error."""
    validator = Draft202012Validator(schema)
    error = best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"invalid arguments at {where}: {error.message}"


def argument_size(arguments: dict[str, Any]) -> int:
    """Size in bytes of the arguments as compact JSON."""
    return len(json.dumps(arguments, separators=(",", ":"), ensure_ascii=False).encode())
