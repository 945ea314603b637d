"""Reading YAML that callers send (plans, MCPTool manifests, OpenAPI documents, planner answers).

Builds JSON values straight from the parser's event stream (libyaml when installed), with an
explicit stack: the size limit applies to the raw text before any work, anchors and aliases
are refused on sight (so a few hundred bytes can never expand into megabytes), nesting is
bounded while reading (so 3,000 `[` never reach recursive code), and only JSON types come
out (no timestamps, binary, sets or merge keys; scalar keys become strings as JSON spells
them). Every refusal is a DocumentError naming the line and column. Parsing costs about
a microsecond per byte, so `load_yaml_off_loop` moves large texts off the event loop.
What the documents mean is the callers' business.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from mcp_ledger.checks.documents import MAX_NESTING, DocumentError

_EVENT_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_TAG = "tag:yaml.org,2002:"
_SCALARS = {f"{_TAG}str", f"{_TAG}int", f"{_TAG}float", f"{_TAG}bool", f"{_TAG}null"}
_AS_TEXT = {f"{_TAG}timestamp", f"{_TAG}value"}
"""Tags whose text is kept as a string: JSON has no dates, and `=` means nothing to us."""
_MAPPING_TAGS = {None, "!", f"{_TAG}map"}
_SEQUENCE_TAGS = {None, "!", f"{_TAG}seq"}
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_NO_KEY = object()
INLINE_YAML_BYTES = 16 * 1024
"""Texts up to this size are parsed on the caller's thread (well under a millisecond's work)."""


def _where(event: yaml.Event) -> str:
    mark = event.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"


def _scalar(event: yaml.ScalarEvent) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    if tag in _AS_TEXT or tag == f"{_TAG}str":
        return event.value
    if tag == f"{_TAG}merge":
        raise DocumentError(f"{_where(event)}: YAML merge keys (<<) are not accepted")
    if tag not in _SCALARS:
        raise DocumentError(f"{_where(event)}: the YAML tag {tag!r} is not accepted; use plain JSON types")
    node = yaml.ScalarNode(tag, event.value)
    try:
        value = _CONSTRUCTOR.construct_object(node, deep=True)
    except (ValueError, yaml.YAMLError) as error:
        raise DocumentError(f"{_where(event)}: {error}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise DocumentError(f"{_where(event)}: {event.value!r} is not a JSON number")
    return value


def _key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class _Builder:
    """Values from events; `open` holds the containers being filled, innermost last."""

    max_depth: int
    documents: list[Any] = field(default_factory=list)
    open: list[tuple[dict[str, Any] | list[Any], list[Any]]] = field(default_factory=list)
    """Each open container with its pending mapping key ([_NO_KEY] while none)."""
    documents_before: int = 0

    def add(self, value: Any, event: yaml.Event) -> None:
        if not self.open:
            self.documents.append(value)
            return
        container, pending = self.open[-1]
        if isinstance(container, list):
            container.append(value)
        elif pending[0] is _NO_KEY:
            if isinstance(value, dict | list):
                raise DocumentError(f"{_where(event)}: a mapping key must be a plain scalar")
            pending[0] = _key(value)
        else:
            container[pending[0]] = value
            pending[0] = _NO_KEY

    def start(self, container: dict[str, Any] | list[Any], event: yaml.Event) -> None:
        if self.open and isinstance(self.open[-1][0], dict) and self.open[-1][1][0] is _NO_KEY:
            raise DocumentError(f"{_where(event)}: a mapping key must be a plain scalar")
        if len(self.open) + 1 > self.max_depth:
            raise DocumentError(f"{_where(event)}: the YAML nests deeper than {self.max_depth} levels")
        self.open.append((container, [_NO_KEY]))

    def end(self, event: yaml.Event) -> None:
        container, _ = self.open.pop()
        self.add(container, event)

    def feed(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.AliasEvent):
            raise DocumentError(f"{_where(event)}: YAML aliases (*{event.anchor}) are not accepted")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise DocumentError(f"{_where(event)}: YAML anchors (&{event.anchor}) are not accepted")
        if isinstance(event, yaml.ScalarEvent):
            self.add(_scalar(event), event)
        elif isinstance(event, yaml.MappingStartEvent):
            if event.tag not in _MAPPING_TAGS:
                raise DocumentError(f"{_where(event)}: the YAML tag {event.tag!r} is not accepted")
            self.start({}, event)
        elif isinstance(event, yaml.SequenceStartEvent):
            if event.tag not in _SEQUENCE_TAGS:
                raise DocumentError(f"{_where(event)}: the YAML tag {event.tag!r} is not accepted")
            self.start([], event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self.end(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents_before = len(self.documents)
        elif isinstance(event, yaml.DocumentEndEvent) and len(self.documents) == self.documents_before:
            self.documents.append(None)  # an empty document


def load_yaml_all(
    text: str, *, max_bytes: int, max_depth: int = MAX_NESTING, what: str = "the YAML"
) -> list[Any]:
    """Every document of a caller's YAML stream, as JSON values.

    Raises:
        DocumentError: too large (checked first), not YAML, an anchor, alias, merge key or
            non-JSON tag, or nested deeper than `max_depth`.
    """
    size = len(text.encode(errors="surrogatepass"))
    if size > max_bytes:
        raise DocumentError(f"{what} is {size} bytes; the limit is {max_bytes}")
    builder = _Builder(max_depth)
    try:
        for event in yaml.parse(text, Loader=_EVENT_LOADER):
            builder.feed(event)
    except yaml.YAMLError as error:
        raise DocumentError(f"{what} is not valid YAML: {error}") from None
    except DocumentError as error:
        raise DocumentError(f"{what}: {error}") from None
    return builder.documents


def load_yaml(text: str, *, max_bytes: int, max_depth: int = MAX_NESTING, what: str = "the YAML") -> Any:
    """The one document of a caller's YAML text (None when it is empty), as a JSON value.

    Raises:
        DocumentError: as load_yaml_all, or more than one document.
    """
    documents = load_yaml_all(text, max_bytes=max_bytes, max_depth=max_depth, what=what)
    if len(documents) > 1:
        raise DocumentError(f"{what} holds {len(documents)} documents; expected one")
    return documents[0] if documents else None


async def load_yaml_off_loop(
    text: str, *, max_bytes: int, max_depth: int = MAX_NESTING, what: str = "the YAML"
) -> Any:
    """load_yaml, in a worker thread when the text is over INLINE_YAML_BYTES.

    Raises:
        DocumentError: as load_yaml.
    """
    if len(text) <= INLINE_YAML_BYTES:
        return load_yaml(text, max_bytes=max_bytes, max_depth=max_depth, what=what)
    return await asyncio.to_thread(load_yaml, text, max_bytes=max_bytes, max_depth=max_depth, what=what)
