"""The registry's own tools: register, remove, import OpenAPI, connect a data source.

Specs only (the worker's runners are in consumers/registry_tools.py). Registering
tenant-wide needs the registering role (settings; "admin" by default); connecting a data
source registers tools for the caller's session only.
"""

from __future__ import annotations

from mcp_ledger.domain.tools import JSONSchema, ToolSpec

DEFAULT_REGISTERING_ROLE = "admin"
DATA_SOURCE_ROLE = "data-analyst"
_SCOPE: JSONSchema = {"type": "string", "enum": ["tenant", "session"], "default": "tenant"}
_NAME: JSONSchema = {"type": "string", "minLength": 1, "maxLength": 64}
_RESULT: JSONSchema = {
    "type": "object",
    "properties": {
        "scope": {"type": "string"},
        "version": {"type": "integer"},
        "registered": {"type": "array", "items": {"type": "string"}},
        "removed": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["scope", "version"],
}


def _object(properties: dict[str, JSONSchema], required: list[str]) -> JSONSchema:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def registry_tool_specs(registering_role: str = DEFAULT_REGISTERING_ROLE) -> dict[str, ToolSpec]:
    """The registry tools by name, requiring `registering_role` to change registries."""
    specs = (
        ToolSpec(
            name="register_tools",
            title="Register tools",
            description=(
                "Register or update tools (definitions with an HTTP or SQL binding) for the tenant, "
                "or for the current session only with scope 'session'."
            ),
            input_schema=_object(
                {"tools": {"type": "array", "items": {"type": "object"}, "minItems": 1}, "scope": _SCOPE},
                ["tools"],
            ),
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="remove_tool",
            title="Remove a tool",
            description="Remove a registered tool from the tenant or the current session.",
            input_schema=_object({"name": _NAME, "scope": _SCOPE}, ["name"]),
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="import_openapi",
            title="Import an OpenAPI description",
            description=(
                "Register one tool per operation of an OpenAPI 3.x document (JSON or YAML), given "
                "inline or by an allowlisted URL. Calls go to the described HTTP service."
            ),
            input_schema=_object(
                {
                    "url": {"type": "string", "maxLength": 2048},
                    "document": {"type": ["object", "string"]},
                    "base_url": {"type": "string", "maxLength": 2048},
                    "prefix": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{0,20}$"},
                },
                [],
            ),
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="connect_data_source",
            title="Connect a SQL data source",
            description=(
                "Introspect an allowlisted PostgreSQL or SQLite database and register, for this "
                "session only, read/query/CRUD tools per table and a query per foreign key."
            ),
            input_schema=_object(
                {
                    "name": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_]{0,19}$"},
                    "dsn": {"type": "string", "minLength": 1, "maxLength": 2048},
                    "schema": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"},
                    "tables": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
                    "writes": {"type": "boolean", "default": True},
                },
                ["name", "dsn"],
            ),
            output_schema=_RESULT,
            needs_session=True,
            read_only=False,
            minimum_role=DATA_SOURCE_ROLE,
        ),
    )
    return {spec.name: spec for spec in specs}
