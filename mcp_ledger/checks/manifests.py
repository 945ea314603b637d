"""MCPTool manifests (the Kubernetes custom resource in deploy/crds) to tool definitions.

Reads YAML (one or many documents, yaml.safe_load_all: no object construction), checks
apiVersion and kind, maps the resource's camelCase spec onto ToolDefinition, and reports
every problem with the document it came from. Registering them is the caller's business.
"""

from __future__ import annotations

from typing import Any

import yaml

from mcp_ledger.checks.registrations import parse_definitions, reserved_name_problems, schema_problem
from mcp_ledger.domain.registry.model import ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError

API_VERSION = "mcp-ledger.io/v1alpha1"
KIND = "MCPTool"
_HTTP_FIELDS = {"baseUrl": "base_url", "bodyArgument": "body_argument", "timeoutSeconds": "timeout_s"}


def _binding(http: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "http", **{_HTTP_FIELDS.get(key, key): value for key, value in http.items()}}


def definition_data(resource: dict[str, Any]) -> dict[str, Any]:
    """ToolDefinition fields from one MCPTool resource (not yet validated)."""
    spec = dict(resource.get("spec") or {})
    security = spec.pop("security", None) or {}
    binding = spec.pop("binding", None) or {}
    data = {
        "name": spec.pop("name", None) or (resource.get("metadata") or {}).get("name"),
        "title": spec.pop("title", ""),
        "description": spec.pop("description", None),
        "input_schema": spec.pop("inputSchema", None),
        "output_schema": spec.pop("outputSchema", None),
        "category": spec.pop("category", None),
        "pipeability": spec.pop("pipeability", None) or {},
        "minimum_role": security.get("minimumRole"),
        "allowed_roles": security.get("allowedRoles") or [],
        "binding": _binding(binding["http"]) if "http" in binding else binding,
    }
    # Anything left over is unknown: keep it so validation refuses it by name.
    return {**data, **spec}


def load_manifests(text: str) -> list[ToolDefinition]:
    """Definitions from a YAML stream of MCPTool resources.

    Raises:
        RegistrationError: unreadable YAML, a foreign resource, or an invalid definition.
    """
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise RegistrationError([f"not valid YAML: {error}"]) from None
    problems: list[str] = []
    raw: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        if not isinstance(document, dict) or document.get("kind") != KIND:
            problems.append(f"document #{index}: not an {KIND} resource")
        elif document.get("apiVersion") != API_VERSION:
            problems.append(f"document #{index}: apiVersion must be {API_VERSION}")
        else:
            raw.append(definition_data(document))
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
