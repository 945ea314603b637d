"""The request an HTTP-bound tool sends: a call's arguments placed into the binding's URL
template, query and headers, so that no argument can change where the request goes.

Path arguments follow RFC 6570 simple expansion: only unreserved characters pass through
(`/`, `?`, `#`, `%` and everything else are percent-encoded), and a segment that a value
leaves made only of dots (`.`, `..`) has its dots encoded too, because clients and servers
remove dot segments. An empty path argument is refused (an empty segment is a different
path to servers that merge slashes). The finished path must still start with the base
URL's path. Header arguments may not carry control characters. Sending is http_runner.py's.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.domain.registry.bindings import PATH_VARIABLE, HttpBinding

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def expand_segment(segment: str, values: dict[str, str]) -> str:
    """One path segment of the template with its {variables} expanded (RFC 6570 level 1).

    Raises:
        ToolExecutionError: a variable without an argument, or with an empty one.
    """

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if not values.get(name):
            problem = "is missing" if name not in values else "may not be empty"
            raise ToolExecutionError("invalid_arguments", f"path argument {name!r} {problem}")
        return quote(values[name], safe="")

    expanded = PATH_VARIABLE.sub(value_of, segment)
    if expanded != segment and set(expanded) == {"."}:
        return expanded.replace(".", "%2E")
    return expanded


def _path(template: str, values: dict[str, str]) -> str:
    return "/".join(expand_segment(segment, values) for segment in template.split("/"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _under_base(base_url: str, url: str) -> bool:
    base = httpx.URL(base_url).raw_path.split(b"?")[0].rstrip(b"/")
    path = httpx.URL(url).raw_path.split(b"?")[0]
    return path == base or path.startswith(base + b"/")


def build_request(
    binding: HttpBinding, arguments: dict[str, Any]
) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL, query, headers) for a call.

    Raises:
        ToolExecutionError: a path argument missing or empty, a header argument with control
            characters, or a URL that would leave the binding's base path.
    """
    in_path: dict[str, str] = {}
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    for name, location in binding.parameters.items():
        if name not in arguments:
            continue
        text = _text(arguments[name])
        if location == "path":
            in_path[name] = text
        elif location == "query":
            query[name] = text
        elif _CONTROL.search(text):
            raise ToolExecutionError("invalid_arguments", f"header argument {name!r} has control characters")
        else:
            headers[name] = text
    url = binding.base_url.rstrip("/") + _path(binding.path, in_path)
    if not _under_base(binding.base_url, url):
        raise ToolExecutionError("endpoint_refused", "the request path would leave the tool's base path")
    return url, query, headers
