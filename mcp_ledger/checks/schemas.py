"""The shape of a caller-registered JSON Schema: what the meta-schema cannot see.

A registered schema runs on every call of its tool, so registration refuses, with where and
why: nesting deeper than MAX_NESTING (checked first: the meta-schema check itself recurses);
`$id` below the root (it would change what the local references mean); a `$ref` or
`$dynamicRef` that points at nothing; references that loop back to the same instance
without descending into it (`{"$ref": "#/$defs/a"}` with a referring to itself, directly or
through allOf/anyOf/oneOf/not/if/then/else/dependentSchemas), which recurse forever at call
time; chains of such hops longer than MAX_SCHEMA_CHAIN; and regular expressions RE2 cannot
run (patterns.py). References that descend (a tree schema whose items refer to the root)
stay allowed: the arguments' own nesting bounds them. Walks iteratively, never recursively.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from mcp_ledger.checks.documents import MAX_NESTING, nesting_problem
from mcp_ledger.checks.patterns import pattern_problem

MAX_SCHEMA_CHAIN = 32
"""Subschemas one instance may pass through without descending (references, allOf, ...)."""
_SAME_INSTANCE_MAPS: tuple[str, ...] = ("dependentSchemas",)
_SAME_INSTANCE_LISTS: tuple[str, ...] = ("allOf", "anyOf", "oneOf")
_SAME_INSTANCE_ONE: tuple[str, ...] = ("not", "if", "then", "else")
_DESCENDING_MAPS: tuple[str, ...] = ("properties", "patternProperties", "$defs", "definitions")
_DESCENDING_LISTS: tuple[str, ...] = ("prefixItems", "items")
_DESCENDING_ONE: tuple[str, ...] = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "contentSchema",
)
_REFERENCES = ("$ref", "$dynamicRef")


class SchemaShapeError(ValueError):
    """The schema cannot be registered; the message says where and why."""


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _children(schema: dict[str, Any], at: str) -> Iterator[tuple[str, Any, bool]]:
    """(pointer, subschema, same instance?) for every subschema the validator may apply."""
    for keywords, same in ((_SAME_INSTANCE_MAPS, True), (_DESCENDING_MAPS, False)):
        for keyword in keywords:
            value = schema.get(keyword)
            if isinstance(value, dict):
                for key, child in value.items():
                    yield f"{at}/{_escape(keyword)}/{_escape(key)}", child, same
    for keywords, same in ((_SAME_INSTANCE_LISTS, True), (_DESCENDING_LISTS, False)):
        for keyword in keywords:
            value = schema.get(keyword)
            if isinstance(value, list):
                for index, child in enumerate(value):
                    yield f"{at}/{keyword}/{index}", child, same
    for keywords, same in ((_SAME_INSTANCE_ONE, True), (_DESCENDING_ONE, False)):
        for keyword in keywords:
            if isinstance(schema.get(keyword), dict | bool):
                yield f"{at}/{keyword}", schema[keyword], same


def _pointer_target(root: Any, fragment: str) -> tuple[str, Any] | None:
    """(canonical pointer, value) of a JSON Pointer fragment, None when it finds nothing."""
    tokens = [unquote(t).replace("~1", "/").replace("~0", "~") for t in fragment.split("/")[1:]]
    current = root
    for token in tokens:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return None
    return "".join(f"/{_escape(token)}" for token in tokens), current


class _Walk:
    """Every subschema reachable from the root, with the same-instance edges between them."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.edges: dict[str, list[str]] = {}
        self.problems: list[str] = []
        self._anchors: dict[str, tuple[str, Any]] = {}
        self._pending: list[tuple[str, Any]] = [("", root)]
        self._references: list[tuple[str, str]] = []

    def run(self) -> None:
        seen: set[str] = set()
        while self._pending or self._references:
            while self._pending:
                at, schema = self._pending.pop()
                if at not in seen:
                    seen.add(at)
                    self._visit(at, schema)
            while self._references and not self._pending:
                at, ref = self._references.pop()
                self._link(at, ref)

    def _visit(self, at: str, schema: Any) -> None:
        self.edges.setdefault(at, [])
        if not isinstance(schema, dict):
            return
        if "$id" in schema and at != "":
            self.problems.append(f"at {at}: $id is allowed only at the root of a registered schema")
        for keyword in ("$anchor", "$dynamicAnchor"):
            if isinstance(schema.get(keyword), str):
                self._anchors[schema[keyword]] = (at, schema)
        self._patterns(at, schema)
        for keyword in _REFERENCES:
            if isinstance(schema.get(keyword), str):
                self._references.append((at, schema[keyword]))
        for pointer, child, same in _children(schema, at):
            if same:
                self.edges[at].append(pointer)
            self._pending.append((pointer, child))

    def _patterns(self, at: str, schema: dict[str, Any]) -> None:
        found = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        if isinstance(schema.get("patternProperties"), dict):
            found += list(schema["patternProperties"])
        for pattern in found:
            problem = pattern_problem(pattern)
            if problem is not None:
                self.problems.append(f"at {at or '/'}: {problem}")

    def _link(self, at: str, ref: str) -> None:
        if not ref.startswith("#"):
            return  # remote references are refused by the registration rules
        fragment = ref[1:]
        target = (
            _pointer_target(self.root, fragment)
            if fragment == "" or fragment.startswith("/")
            else self._anchors.get(unquote(fragment))
        )
        if target is None:
            self.problems.append(f"at {at or '/'}: the reference {ref[:200]!r} points at nothing")
            return
        self.edges[at].append(target[0])
        self._pending.append(target)


def _longest_chain(edges: dict[str, list[str]]) -> tuple[int, list[str] | None]:
    """(longest same-instance path, a cycle if there is one), by an iterative DFS."""
    longest: dict[str, int] = {}
    on_path: set[str] = set()
    for start in edges:
        if start in longest:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                on_path.add(node)
                path.append(node)
            children = edges.get(node, [])
            if index < len(children):
                stack.append((node, index + 1))
                child = children[index]
                if child in on_path:
                    return 0, [*path[path.index(child) :], child]
                if child not in longest:
                    stack.append((child, 0))
                continue
            longest[node] = 1 + max((longest[c] for c in children), default=0)
            on_path.discard(node)
            path.pop()
    return max(longest.values(), default=0), None


def schema_shape_problems(schema: Any) -> list[str]:
    """Every reason the shape of `schema` is refused (empty: acceptable)."""
    deep = nesting_problem(schema, MAX_NESTING, what="the schema")
    if deep is not None:
        return [deep]
    walk = _Walk(schema)
    walk.run()
    if walk.problems:
        return walk.problems
    chain, cycle = _longest_chain(walk.edges)
    if cycle is not None:
        loop = " -> ".join(node or "/" for node in cycle)
        return [f"references loop without descending into the value: {loop[:300]}"]
    if chain > MAX_SCHEMA_CHAIN:
        return [f"references and combinators chain {chain} subschemas deep; the limit is {MAX_SCHEMA_CHAIN}"]
    return []
