"""Which properties of an object a schema evaluates: what `unevaluatedProperties` leaves out.

jsonschema's own version matches `patternProperties` with Python's backtracking `re`; this
one takes the caller's search (RE2, validator.py) and is otherwise the same walk: `$ref`,
`$dynamicRef`, properties, additional and unevaluated properties, patternProperties,
dependentSchemas, the valid branches of allOf/anyOf/oneOf, and if/then/else. Recursion
follows the schema, whose same-instance chains registration bounds (schemas.py); the
validator's step meter bounds the validation each branch costs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jsonschema.exceptions import ValidationError

Search = Callable[[str, str], "bool | ValidationError"]


def _valid(validator: Any, instance: Any, schema: Any) -> bool:
    return next(validator.descend(instance, schema), None) is None


def _referenced(validator: Any, instance: Any, schema: dict[str, Any], search: Search) -> set[str]:
    keys: set[str] = set()
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if isinstance(ref, str):
            resolved = validator._resolver.lookup(ref)
            inner = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= evaluated_property_keys(inner, instance, resolved.contents, search)
    return keys


def _branches(validator: Any, instance: Any, schema: dict[str, Any], search: Search) -> set[str]:
    keys: set[str] = set()
    for keyword in ("allOf", "oneOf", "anyOf"):
        for branch in schema.get(keyword, []):
            if _valid(validator, instance, branch):
                keys |= evaluated_property_keys(validator, instance, branch, search)
    if "if" in schema:
        if _valid(validator, instance, schema["if"]):
            keys |= evaluated_property_keys(validator, instance, schema["if"], search)
            if "then" in schema:
                keys |= evaluated_property_keys(validator, instance, schema["then"], search)
        elif "else" in schema:
            keys |= evaluated_property_keys(validator, instance, schema["else"], search)
    return keys


def evaluated_property_keys(
    validator: Any, instance: dict[str, Any], schema: Any, search: Search
) -> set[str]:
    """The keys of `instance` that `schema` (at this validator's position) evaluates."""
    if not isinstance(schema, dict):
        return set()
    keys = _referenced(validator, instance, schema, search)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (subschema := schema.get(keyword)) is not None:
            keys |= {key for key, value in instance.items() if _valid(validator, value, subschema)}
    for pattern in schema.get("patternProperties", {}):
        keys |= {key for key in instance if search(pattern, key) is True}
    for key, subschema in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys |= evaluated_property_keys(validator, instance, subschema, search)
    return keys | _branches(validator, instance, schema, search)
