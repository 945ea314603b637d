"""MCPTool manifests (the Kubernetes custom resource in deploy/crds) to tool definitions.

Reads YAML (one or many documents, at most MAX_MANIFEST_BYTES, through yaml_documents.py:
JSON types only, no anchors or aliases, nesting bounded), checks apiVersion and kind, maps
the resource's camelCase spec onto ToolDefinition, and reports
every problem with the document it came from. Registering them is the caller's business.
"""

from __future__ import annotations

from typing import Any

from mcp_ledger.checks.documents import DocumentError
from mcp_ledger.checks.registrations import parse_definitions, reserved_name_problems, schema_problem
from mcp_ledger.checks.yaml_documents import load_yaml_all
from mcp_ledger.domain.registry.model import ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError

API_VERSION = "mcp-ledger.io/v1alpha1"
KIND = "MCPTool"
SERVER_KIND = "MCPServer"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_HTTP_FIELDS = {"baseUrl": "base_url", "bodyArgument": "body_argument", "timeoutSeconds": "timeout_s"}


def _object(value: Any, where: str) -> dict[str, Any]:
    """`value` as an object (None as an empty one).

    Raises:
        RegistrationError: it is something else.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegistrationError([f"{where}: an object, not {type(value).__name__}"])
    return value


def _binding(http: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "http", **{_HTTP_FIELDS.get(key, key): value for key, value in http.items()}}


def definition_data(resource: dict[str, Any]) -> dict[str, Any]:
    """ToolDefinition fields from one MCPTool resource (not yet validated).

    Raises:
        RegistrationError: spec, metadata, security or binding is not an object.
    """
    spec = dict(_object(resource.get("spec"), "spec"))
    security = _object(spec.pop("security", None), "spec.security")
    binding = _object(spec.pop("binding", None), "spec.binding")
    data = {
        "name": spec.pop("name", None) or _object(resource.get("metadata"), "metadata").get("name"),
        "title": spec.pop("title", ""),
        "description": spec.pop("description", None),
        "input_schema": spec.pop("inputSchema", None),
        "output_schema": spec.pop("outputSchema", None),
        "category": spec.pop("category", None),
        "pipeability": spec.pop("pipeability", None) or {},
        "minimum_role": security.get("minimumRole"),
        "allowed_roles": security.get("allowedRoles") or [],
        "binding": _binding(_object(binding["http"], "spec.binding.http")) if "http" in binding else binding,
    }
    # Anything left over is unknown: keep it so validation refuses it by name.
    return {**data, **spec}


def load_manifests(text: str) -> list[ToolDefinition]:
    """Definitions from a YAML stream of MCPTool resources.

    Raises:
        RegistrationError: unreadable YAML, a foreign resource, or an invalid definition.
    """
    try:
        loaded = load_yaml_all(text, max_bytes=MAX_MANIFEST_BYTES, what="the manifest")
    except DocumentError as error:
        raise RegistrationError([str(error)]) from None
    documents = [doc for doc in loaded if doc is not None]
    problems: list[str] = []
    raw: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        if isinstance(document, dict) and document.get("kind") == SERVER_KIND:
            continue  # MCPServer resources: checks/server_manifests.py
        if not isinstance(document, dict) or document.get("kind") != KIND:
            problems.append(f"document #{index}: not an {KIND} resource")
        elif document.get("apiVersion") != API_VERSION:
            problems.append(f"document #{index}: apiVersion must be {API_VERSION}")
        else:
            try:
                raw.append(definition_data(document))
            except RegistrationError as error:
                problems += [f"document #{index}: {problem}" for problem in error.problems]
    if problems:
        raise RegistrationError(problems)
    definitions = parse_definitions(raw)
    problems.extend(reserved_name_problems(definitions))
    for definition in definitions:
        for schema in (definition.input_schema, definition.output_schema):
            problem = None if schema is None else schema_problem(schema)
            if problem is not None:
                problems.append(f"{definition.name}: {problem}")
    if problems:
        raise RegistrationError(problems)
    return definitions
