"""Tool descriptions as the gateway lists them, and the built-in catalog.

A ToolSpec is data (name, JSON Schemas, whether it needs a session); the code that runs a
tool lives in consumers/. Argument schemas are JSON Schema 2020-12, checked at the API edge
before anything is published and again by the worker.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONSchema = dict[str, Any]
TaskSupport = Literal["forbidden", "optional", "required"]
"""Whether a tool's call may (optional) or must (required) run as an MCP task."""

NOTE_KEY_SCHEMA: JSONSchema = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[^\s]+$"}


class ToolSpec(BaseModel):
    """How a tool is presented to agents and what it requires."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str
    description: str
    input_schema: JSONSchema
    output_schema: JSONSchema | None = None
    needs_session: bool = False
    opens_session: bool = False
    read_only: bool = True
    minimum_role: str | None = None
    """The lowest rung of domain.access.ROLE_LADDER allowed to call this tool."""
    allowed_roles: frozenset[str] = frozenset()
    """When not empty, the caller needs one of these roles as well."""
    annotations: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = None
    """How long the API waits for the outcome when longer than its call timeout (an upstream
    tool's own timeout: long tools are normal there)."""
    listing: dict[str, Any] | None = None
    """An upstream tool's MCP presentation as its server sent it (annotations, icons, _meta),
    listed unchanged; None for the gateway's own and registered tools."""
    task_support: TaskSupport = "forbidden"
    """Whether a call may run as an MCP task (listed as `execution.taskSupport`)."""


def _object(properties: dict[str, JSONSchema], required: list[str]) -> JSONSchema:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


BUILTIN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="echo",
        title="Echo",
        description="Return the given text unchanged.",
        input_schema=_object({"text": {"type": "string", "maxLength": 10000}}, ["text"]),
        output_schema=_object({"text": {"type": "string"}}, ["text"]),
        annotations={"pipeability": {"accepts": ["text"], "produces": ["text"]}},
        task_support="optional",
    ),
    ToolSpec(
        name="session_open",
        title="Open a session",
        description=(
            "Open a new conversation session owned by the caller. Send the returned session_id "
            "in the Ledger-Session header of later requests to use it."
        ),
        input_schema=_object({}, []),
        output_schema=_object({"session_id": {"type": "string"}}, ["session_id"]),
        opens_session=True,
        read_only=False,
    ),
    ToolSpec(
        name="note_set",
        title="Write a session note",
        description="Remember a JSON value under a key in the current session.",
        input_schema=_object({"key": NOTE_KEY_SCHEMA, "value": {}}, ["key", "value"]),
        output_schema=_object({"key": {"type": "string"}}, ["key"]),
        needs_session=True,
        read_only=False,
    ),
    ToolSpec(
        name="note_get",
        title="Read a session note",
        description="Read the value remembered under a key in the current session.",
        input_schema=_object({"key": NOTE_KEY_SCHEMA}, ["key"]),
        output_schema=_object(
            {"key": {"type": "string"}, "found": {"type": "boolean"}, "value": {}}, ["key", "found"]
        ),
        needs_session=True,
    ),
    ToolSpec(
        name="note_delete",
        title="Forget a session note",
        description="Forget the value remembered under a key in the current session.",
        input_schema=_object({"key": NOTE_KEY_SCHEMA}, ["key"]),
        output_schema=_object(
            {"key": {"type": "string"}, "deleted": {"type": "boolean"}}, ["key", "deleted"]
        ),
        needs_session=True,
        read_only=False,
    ),
    ToolSpec(
        name="note_list",
        title="List session notes",
        description="All notes of the current session.",
        input_schema=_object({}, []),
        output_schema=_object({"notes": {"type": "object"}}, ["notes"]),
        needs_session=True,
    ),
    ToolSpec(
        name="sleep",
        title="Sleep",
        description="Wait the given number of milliseconds, then answer (for client timeouts and tests).",
        input_schema=_object({"ms": {"type": "integer", "minimum": 0, "maximum": 30000}}, ["ms"]),
        output_schema=_object({"slept_ms": {"type": "integer"}}, ["slept_ms"]),
        task_support="optional",
    ),
)


STATE_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="session_close",
        title="Close the session",
        description="End the current session; later requests naming it are refused.",
        input_schema=_object({}, []),
        output_schema=_object({"closed": {"type": "boolean"}}, ["closed"]),
        needs_session=True,
        read_only=False,
    ),
    ToolSpec(
        name="blob_put",
        minimum_role="viewer",
        title="Store a document",
        description=(
            "Keep a text document server-side and return a signed, expiring resource_link to it, "
            "readable with resources/read by you in this session only (optionally once)."
        ),
        input_schema=_object(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "text": {"type": "string", "maxLength": 60000},
                "mime_type": {"type": "string", "maxLength": 100, "default": "text/plain"},
                "one_time": {"type": "boolean", "default": False},
            },
            ["name", "text"],
        ),
        output_schema=_object(
            {"uri": {"type": "string"}, "expires_at": {"type": "number"}, "size": {"type": "integer"}},
            ["uri", "expires_at", "size"],
        ),
        needs_session=True,
        read_only=False,
        annotations={"pipeability": {"accepts": ["text"], "produces": ["resource_link"]}},
    ),
    ToolSpec(
        name="state_seal",
        minimum_role="viewer",
        title="Seal state",
        description=(
            "Encrypt a JSON state (AES-GCM) bound to you and an expiry; keep the token and pass it "
            "to state_open later. Tokens are at most 64 KB."
        ),
        input_schema=_object(
            {"state": {}, "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 86400}}, ["state"]
        ),
        output_schema=_object(
            {"sealed": {"type": "string"}, "expires_at": {"type": "number"}}, ["sealed", "expires_at"]
        ),
    ),
    ToolSpec(
        name="state_open",
        minimum_role="viewer",
        title="Open sealed state",
        description="Decrypt a token from state_seal; refused when tampered with, expired or not yours.",
        input_schema=_object({"sealed": {"type": "string", "maxLength": 65536}}, ["sealed"]),
        output_schema=_object({"state": {}}, ["state"]),
    ),
)


def builtin_catalog() -> dict[str, ToolSpec]:
    """The built-in tools by name."""
    return {spec.name: spec for spec in (*BUILTIN_TOOLS, *STATE_TOOLS)}
