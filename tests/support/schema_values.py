"""Hypothesis strategies for values of the JSON Schemas tools declare (the subset they use:
type, enum, const, properties/required, items/minItems, string lengths and patterns,
numeric bounds). hypothesis-jsonschema would be the library for this, but its current
release breaks on current Hypothesis; values here need not be exhaustive, only plausible
enough that one mutation makes them invalid in a targeted way."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 30), 30)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= high)
    return st.text(min_size=low, max_size=max(low, high))


def _object(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: values_of(sub) for name, sub in properties.items() if name in required},
        optional={name: values_of(sub) for name, sub in properties.items() if name not in required},
    )


def values_of(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Plausible instances of `schema`."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([values_of({**schema, "type": one}) for one in kind])
    if kind == "object":
        return _object(schema)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = values_of(schema.get("items", {}))
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=max(3, schema.get("minItems", 0)))
    return json_values
