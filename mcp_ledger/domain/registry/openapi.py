"""OpenAPI 3.x documents to tool definitions: one tool per operation.

operationId (sanitised, unique) names the tool; path, query and header parameters and the
JSON request body (under `body`) make its inputSchema; the first 2xx JSON response makes its
outputSchema (wrapped under `result` when not an object). Local `$ref`s are inlined (a
cycle becomes an unconstrained schema); remote ones are refused; inlining is bounded (at
most MAX_INLINED_VALUES values and MAX_INLINED_DEPTH levels, so references that fan out,
a few hundred bytes that would expand to gigabytes, are refused like YAML aliases). Every
part read is type-checked: a wrong shape is an OpenApiError naming it. The `x-mcp-tool`
extension gives category, pipeability {accepts, produces, pointer_arguments} and security.minimum_role.
Pure: the document arrives parsed; fetching and YAML are the caller's business.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from mcp_ledger.domain.registry.bindings import HttpBinding
from mcp_ledger.domain.registry.model import Pipeability, ToolDefinition
from mcp_ledger.domain.tools import JSONSchema

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
MAX_NAME = 64
MAX_INLINED_VALUES = 200_000
MAX_INLINED_DEPTH = 64
"""As deep as caller data may nest anywhere (checks/documents.MAX_NESTING)."""


class OpenApiError(ValueError):
    """The document is not an OpenAPI 3.x description this importer can use."""


def _object(value: Any, where: str) -> dict[str, Any]:
    """`value` as an object (a missing one as empty).

    Raises:
        OpenApiError: it is something else.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OpenApiError(f"{where} must be an object, not {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OpenApiError(f"{where} must be a list, not {type(value).__name__}")
    return value


class _Budget:
    """What inlining may still produce: values in all, and levels (nesting and reference hops
    alike) on the current path, so the recursion stays shallow too."""

    def __init__(self) -> None:
        self.values = MAX_INLINED_VALUES

    def spend(self, depth: int) -> None:
        self.values -= 1
        if self.values < 0:
            raise OpenApiError(f"the references expand to more than {MAX_INLINED_VALUES} values once inlined")
        if depth > MAX_INLINED_DEPTH:
            raise OpenApiError(
                f"a schema nests deeper than {MAX_INLINED_DEPTH} levels once references are inlined"
            )


def _resolve(
    document: dict[str, Any],
    node: Any,
    seen: tuple[str, ...] = (),
    budget: _Budget | None = None,
    depth: int = 0,
) -> Any:
    budget = budget or _Budget()
    budget.spend(depth)
    if isinstance(node, list):
        return [_resolve(document, item, seen, budget, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/"):
            raise OpenApiError(f"reference {ref!r} is not local; only '#/…' references are imported")
        if ref in seen:
            return {}
        target: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise OpenApiError(f"reference {ref!r} points at nothing")
            target = target[part]
        return _resolve(document, target, (*seen, ref), budget, depth + 1)  # hops count as levels
    return {key: _resolve(document, value, seen, budget, depth + 1) for key, value in node.items()}


def _name(operation: dict[str, Any], method: str, path: str, prefix: str, taken: set[str]) -> str:
    raw = operation.get("operationId") or f"{method}_{path}"
    base = (prefix + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(raw)).strip("_.-"))[:MAX_NAME] or "operation"
    name, counter = base, 2
    while name in taken:
        suffix = f"_{counter}"
        name, counter = base[: MAX_NAME - len(suffix)] + suffix, counter + 1
    taken.add(name)
    return name


def _inputs(
    parameters: list[dict[str, Any]], body: dict[str, Any] | None
) -> tuple[JSONSchema, dict[str, Any]]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    locations: dict[str, Any] = {}
    for parameter in parameters:
        parameter = _object(parameter, "a parameter")
        where, name = parameter.get("in"), parameter.get("name")
        if where not in {"path", "query", "header"} or not isinstance(name, str):
            continue
        schema = dict(_object(parameter.get("schema"), f"parameter {name!r}: schema"))
        if parameter.get("description"):
            schema.setdefault("description", parameter["description"])
        properties[name], locations[name] = schema, where
        if parameter.get("required") or where == "path":
            required.append(name)
    if body is not None:
        content = _object(_object(body, "requestBody").get("content"), "requestBody.content")
        json_body = content.get("application/json")
        if json_body is not None:
            properties["body"] = _object(json_body, "the JSON request body").get("schema") or {}
            if body.get("required"):
                required.append("body")
    return {"type": "object", "properties": properties, "required": required}, locations


def _output(responses: dict[str, Any]) -> JSONSchema | None:
    for status in sorted(responses, key=str):
        if not str(status).startswith("2"):
            continue
        content = _object(_object(responses[status], f"response {status}").get("content"), "content")
        schema = _object(content.get("application/json"), f"response {status}").get("schema")
        if schema is None:
            return None
        schema = _object(schema, f"response {status}: schema")
        if schema.get("type") == "object":
            return dict(schema)
        return {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    return None


def _extension(operation: dict[str, Any]) -> dict[str, Any]:
    extension = operation.get("x-mcp-tool") or {}
    if not isinstance(extension, dict):
        raise OpenApiError("x-mcp-tool must be an object")
    pipes = _object(extension.get("pipeability"), "x-mcp-tool.pipeability")
    return {
        "category": extension.get("category"),
        "pipeability": Pipeability(
            accepts=tuple(pipes.get("accepts") or ()),
            produces=tuple(pipes.get("produces") or ()),
            pointer_arguments=tuple(pipes.get("pointer_arguments") or ()),
        ),
        "minimum_role": _object(extension.get("security"), "x-mcp-tool.security").get("minimum_role"),
    }


def _base_url(document: dict[str, Any], given: str | None) -> str:
    if given:
        return given
    servers = document.get("servers") or []
    url = servers[0].get("url") if servers and isinstance(servers[0], dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise OpenApiError("no absolute server URL: give base_url or an absolute servers[0].url")
    return url


def tools_from_openapi(
    document: dict[str, Any], *, base_url: str | None = None, prefix: str = ""
) -> list[ToolDefinition]:
    """A definition per operation of the document.

    Raises:
        OpenApiError: not OpenAPI 3.x, no usable server URL, bad references or extensions.
    """
    if not isinstance(document, dict):
        raise OpenApiError("the document must be an object")
    if not str(document.get("openapi", "")).startswith("3."):
        raise OpenApiError("not an OpenAPI 3.x document (the 'openapi' field must be 3.x)")
    server = _base_url(document, base_url)
    taken: set[str] = set()
    definitions = []
    budget = _Budget()  # one for the whole document: every operation inlines from it
    for path, raw_item in _object(document.get("paths"), "paths").items():
        item = _object(_resolve(document, raw_item, budget=budget), f"paths.{path}")
        for method in METHODS:
            if isinstance(item.get(method), dict):
                definitions.append(_operation(item, method, str(path), server, prefix, taken))
    if not definitions:
        raise OpenApiError("the document has no operations")
    return definitions


def _operation(
    item: dict[str, Any], method: str, path: str, server: str, prefix: str, taken: set[str]
) -> ToolDefinition:
    operation = item[method]
    parameters = [
        *_list(item.get("parameters"), f"{path}: parameters"),
        *_list(operation.get("parameters"), f"{method.upper()} {path}: parameters"),
    ]
    input_schema, locations = _inputs(parameters, operation.get("requestBody"))
    binding = HttpBinding(
        method=method.upper(),
        base_url=server,
        path=path if path.startswith("/") else "/" + path,
        parameters=locations,
        body_argument="body" if "body" in input_schema["properties"] else None,
    )
    summary = operation.get("summary") or operation.get("description") or f"{method.upper()} {path}"
    try:
        return ToolDefinition(
            name=_name(operation, method, path, prefix, taken),
            title=str(operation.get("summary") or "")[:200],
            description=str(summary)[:4000],
            input_schema=input_schema,
            output_schema=_output(_object(operation.get("responses"), f"{method.upper()} {path}: responses")),
            binding=binding,
            **_extension(operation),
        )
    except ValidationError as error:
        raise OpenApiError(f"{method.upper()} {path}: {error.errors()[0]['msg']}") from None
