"""The JSON Schema (2020-12) validator every tool's arguments are checked with.

A registered schema is another tenant's program run on each call, so nothing in it may take
more than linear time or run unmetered. This validator is jsonschema's Draft 2020-12 with:
- every regular expression (`pattern`, `patternProperties`, and the property matching of
  `additionalProperties` and `unevaluatedProperties`) run on RE2 (patterns.py), never on
  Python's backtracking `re`; a pattern RE2 refuses fails the check, it is not skipped;
- `uniqueItems` by hashing canonical forms, linear instead of jsonschema's quadratic fallback;
- a step budget: each keyword evaluation costs one step plus the loops it runs (enum
  members, patterns times properties, ...). Past MAX_CHECK_STEPS the check stops with
  CheckTooCostlyError, so nested applicators (`anyOf` under `unevaluatedProperties`, whose
  cost doubles per level) cannot run away either.
Where the arguments come from, and what a refusal becomes, is arguments.py's business.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from mcp_ledger.checks.patterns import PatternError, matches
from mcp_ledger.checks.validator_keys import evaluated_property_keys

MAX_CHECK_STEPS = 500_000
"""Far above what any real call of a 64 KiB argument needs (about a step per value and
keyword), and a bound on the time a hostile schema can take."""

Keyword = Callable[[Any, Any, Any, dict[str, Any]], Iterator[ValidationError]]
"""A keyword's check: (validator, the keyword's value, instance, schema) to its errors."""


class CheckTooCostlyError(Exception):
    """Checking these arguments against this schema would take more than the step budget."""


@dataclass
class _Meter:
    left: int


_METER: ContextVar[_Meter | None] = ContextVar("argument_check_meter", default=None)


def _spend(steps: int) -> None:
    meter = _METER.get()
    if meter is None:
        return
    meter.left -= steps
    if meter.left < 0:
        raise CheckTooCostlyError(f"checking these arguments takes more than {MAX_CHECK_STEPS} steps")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, dict | list | str) else 0


def _cost(keyword: str, value: Any, instance: Any) -> int:
    """Steps of one keyword evaluation: one, plus the loops it runs over schema and instance."""
    if keyword == "patternProperties" and isinstance(value, dict) and isinstance(instance, dict):
        return 1 + len(value) * len(instance)
    if keyword in {"enum", "required", "properties", "dependentRequired", "dependentSchemas"}:
        return 1 + _size(value)
    if keyword in {"additionalProperties", "unevaluatedProperties", "unevaluatedItems", "uniqueItems"}:
        return 1 + _size(instance)
    return 1


def _metered(keyword: str, check: Keyword) -> Keyword:
    def metered(validator: Any, value: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        _spend(_cost(keyword, value, instance))
        yield from check(validator, value, instance, schema)

    return metered


def _search(pattern: str, text: str) -> bool | ValidationError:
    try:
        return matches(pattern, text)
    except PatternError as error:
        return ValidationError(f"the schema's pattern {pattern[:200]!r} cannot be checked: {error}")


def _pattern(validator: Any, pattern: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if not validator.is_type(instance, "string"):
        return
    found = _search(pattern, instance)
    if isinstance(found, ValidationError):
        yield found
    elif not found:
        shown = instance if len(instance) <= 80 else instance[:80] + "…"
        yield ValidationError(f"{shown!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            found = _search(pattern, key)
            if isinstance(found, ValidationError):
                yield found
                return
            if found:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(_search(pattern, key) is True for pattern in patterns)
    ]


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        listed = ", ".join(repr(extra) for extra in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({listed} unexpected)")


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = evaluated_property_keys(validator, instance, schema, _search)
    invalid = [
        key
        for key in instance
        if key not in evaluated
        and next(validator.descend(instance[key], unevaluated, path=key, schema_path=key), None) is not None
    ]
    if invalid:
        listed = ", ".join(repr(key) for key in sorted(invalid))
        verdict = "are not allowed" if unevaluated is False else "are not valid under the given schema"
        yield ValidationError(f"Unevaluated properties {verdict} ({listed} unexpected)")


def _canonical(value: Any) -> Any:
    """A hashable form equal exactly when jsonschema's `equal` says so (1 == 1.0, True != 1).
    Numbers become strings, whose hashes are randomised: crafted integers cannot collide."""
    if isinstance(value, bool) or value is None:
        return ("c", value)
    if isinstance(value, int | float):
        integral = isinstance(value, int) or (math.isfinite(value) and value.is_integer())
        return ("n", str(int(value)) if integral else repr(value))
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("l", tuple(_canonical(item) for item in value))
    if isinstance(value, dict):
        return ("o", frozenset((key, _canonical(item)) for key, item in value.items()))
    return ("?", repr(value))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"{instance!r} has non-unique elements")
            return
        seen.add(key)


_REPLACED: dict[str, Keyword] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "unevaluatedProperties": _unevaluated_properties,
    "uniqueItems": _unique_items,
}
ArgumentValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    validators={
        keyword: _metered(keyword, _REPLACED.get(keyword) or check)
        for keyword, check in Draft202012Validator.VALIDATORS.items()
    },
)
"""Draft 2020-12 with linear-time keywords and the step meter (format stays unchecked)."""


@dataclass(frozen=True)
class CompiledSchema:
    """A schema ready to check many calls: built once, run under a fresh budget each time."""

    validator: Validator

    def errors(self, instance: Any) -> Iterator[ValidationError]:
        """Every error of `instance`, lazily; each `next` spends from the current meter."""
        return self.validator.iter_errors(instance)


def compile_schema(schema: dict[str, Any]) -> CompiledSchema:
    """The validator for one tool's input schema."""
    return CompiledSchema(ArgumentValidator(schema))


@contextmanager
def step_budget(steps: int = MAX_CHECK_STEPS) -> Iterator[None]:
    """Meter every keyword evaluated inside the block against a fresh budget of `steps`.

    Raises:
        CheckTooCostlyError: (inside the block) the budget ran out.
    """
    token = _METER.set(_Meter(steps))
    try:
        yield
    finally:
        _METER.reset(token)
