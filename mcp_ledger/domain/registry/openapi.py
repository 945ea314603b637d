"""OpenAPI 3.x documents to tool definitions: one tool per operation.

operationId (sanitised, unique) names the tool; path, query and header parameters and the
JSON request body (under `body`) make its inputSchema; the first 2xx JSON response makes its
outputSchema (wrapped under `result` when not an object). Local `$ref`s are inlined (a
cycle becomes an unconstrained schema); remote ones are refused. The `x-mcp-tool`
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


class OpenApiError(ValueError):
    """The document is not an OpenAPI 3.x description this importer can use."""


def _resolve(document: dict[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, list):
        return [_resolve(document, item, seen) for item in node]
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
        return _resolve(document, target, (*seen, ref))
    return {key: _resolve(document, value, seen) for key, value in node.items()}


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
        where, name = parameter.get("in"), parameter.get("name")
        if where not in {"path", "query", "header"} or not isinstance(name, str):
            continue
        schema = dict(parameter.get("schema") or {})
        if parameter.get("description"):
            schema.setdefault("description", parameter["description"])
        properties[name], locations[name] = schema, where
        if parameter.get("required") or where == "path":
            required.append(name)
    if body is not None:
        json_body = (body.get("content") or {}).get("application/json")
        if json_body is not None:
            properties["body"] = json_body.get("schema") or {}
            if body.get("required"):
                required.append("body")
    return {"type": "object", "properties": properties, "required": required}, locations


def _output(responses: dict[str, Any]) -> JSONSchema | None:
    for status in sorted(responses):
        if not str(status).startswith("2"):
            continue
        content = (responses[status] or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        if schema is None:
            return None
        if schema.get("type") == "object":
            return dict(schema)
        return {"type": "object", "properties": {"result": schema}, "required": ["result"]}
    return None


def _extension(operation: dict[str, Any]) -> dict[str, Any]:
    extension = operation.get("x-mcp-tool") or {}
    if not isinstance(extension, dict):
        raise OpenApiError("x-mcp-tool must be an object")
    pipes = extension.get("pipeability") or {}
    return {
        "category": extension.get("category"),
        "pipeability": Pipeability(
            accepts=tuple(pipes.get("accepts") or ()),
            produces=tuple(pipes.get("produces") or ()),
            pointer_arguments=tuple(pipes.get("pointer_arguments") or ()),
        ),
        "minimum_role": (extension.get("security") or {}).get("minimum_role"),
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
    if not str(document.get("openapi", "")).startswith("3."):
        raise OpenApiError("not an OpenAPI 3.x document (the 'openapi' field must be 3.x)")
    server = _base_url(document, base_url)
    taken: set[str] = set()
    definitions = []
    for path, raw_item in (document.get("paths") or {}).items():
        item = _resolve(document, raw_item)
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
    parameters = [*(item.get("parameters") or []), *(operation.get("parameters") or [])]
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
            output_schema=_output(operation.get("responses") or {}),
            binding=binding,
            **_extension(operation),
        )
    except ValidationError as error:
        raise OpenApiError(f"{method.upper()} {path}: {error.errors()[0]['msg']}") from None
