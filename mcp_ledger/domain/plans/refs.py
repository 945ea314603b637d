"""References from a task's parameters to upstream outputs, and their resolution.

Two spellings, both whole values: {"$ref": "tasks.A.output", "path": "/x/0"} with an
RFC 6901 JSON Pointer, and the string "${A.output.x.0}". Nothing is evaluated: a reference
is replaced by the value found at its pointer, never interpreted. A string that merely
contains "${" somewhere is refused by validation rather than half-interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_WHOLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_-]*)\.output((?:\.[^.{}]+)*)\}$")
_REF_TARGET = re.compile(r"^tasks\.([A-Za-z_][A-Za-z0-9_-]*)\.output$")


@dataclass(frozen=True, slots=True)
class Reference:
    """A pointer into one task's output."""

    task_id: str
    pointer: str


class PlanReferenceError(ValueError):
    """A reference is malformed or points at nothing."""


class PointerError(PlanReferenceError):
    """The pointer does not lead to a value in the document."""


def escape_token(token: str) -> str:
    """One RFC 6901 reference token."""
    return token.replace("~", "~0").replace("/", "~1")


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 pointer ("" is the whole document).

    Raises:
        PointerError: it does not start with "/" or has a bad escape.
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(f"JSON Pointer {pointer!r} must start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise PointerError(f"JSON Pointer {pointer!r} has a bad '~' escape")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at `pointer` in `document` (RFC 6901).

    Raises:
        PointerError: no value there.
    """
    current = document
    for token in parse_pointer(pointer):
        if isinstance(current, Mapping):
            if token not in current:
                raise PointerError(f"no member {token!r} at {pointer!r}")
            current = current[token]
        elif isinstance(current, list):
            if not re.fullmatch(r"0|[1-9][0-9]*", token) or int(token) >= len(current):
                raise PointerError(f"no item {token!r} at {pointer!r}")
            current = current[int(token)]
        else:
            raise PointerError(f"{pointer!r} goes past a {type(current).__name__}")
    return current


def as_reference(value: Any) -> Reference | None:
    """The reference this value is, None when it is a plain value.

    Raises:
        PlanReferenceError: it looks like a reference but is malformed.
    """
    if isinstance(value, str):
        match = _WHOLE.match(value)
        if match is None:
            if "${" in value:
                raise PlanReferenceError(
                    f"{value!r}: references are whole values like '${{A.output.x}}'; "
                    "text around a reference is not interpolated"
                )
            return None
        path = [escape_token(part) for part in match.group(2).split(".")[1:]]
        return Reference(match.group(1), "".join(f"/{part}" for part in path))
    if isinstance(value, Mapping) and "$ref" in value:
        target = _REF_TARGET.match(str(value["$ref"]))
        extra = set(value) - {"$ref", "path"}
        if target is None or extra:
            raise PlanReferenceError(f"{dict(value)!r}: expected {{'$ref': 'tasks.ID.output', 'path': '/…'}}")
        pointer = str(value.get("path", ""))
        parse_pointer(pointer)
        return Reference(target.group(1), pointer)
    return None


def references_in(value: Any) -> Iterator[Reference]:
    """Every reference inside a parameter value, depth first.

    Raises:
        PlanReferenceError: a malformed reference.
    """
    ref = as_reference(value)
    if ref is not None:
        yield ref
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)


def resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    """The value with every reference replaced by what it points at in `outputs`.

    Raises:
        PlanReferenceError: a reference to a task without output, or a pointer that finds nothing.
    """
    ref = as_reference(value)
    if ref is not None:
        if ref.task_id not in outputs:
            raise PlanReferenceError(f"task {ref.task_id!r} has no output")
        return resolve_pointer(outputs[ref.task_id], ref.pointer)
    if isinstance(value, Mapping):
        return {key: resolve(item, outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, outputs) for item in value]
    return value
