"""The upstream-server tools (specs only; the worker's runners are consumers/upstreams/).

register_server, remove_server, approve_server, reject_server, refresh_server and list_servers need the
registering role ("admin" by default), like register_tools. A stdio command is not among
their arguments' meanings: the runner refuses `command`, stdio servers come only from
operator configuration.
"""

from __future__ import annotations

from mcp_ledger.domain.registry.tools import DEFAULT_REGISTERING_ROLE
from mcp_ledger.domain.tools import JSONSchema, ToolSpec
from mcp_ledger.domain.upstreams.model import PREFIX_PATTERN, SERVER_NAME_PATTERN

_SCOPE: JSONSchema = {"type": "string", "enum": ["tenant", "session"], "default": "tenant"}
_NAME: JSONSchema = {"type": "string", "pattern": SERVER_NAME_PATTERN}
_PATTERNS: JSONSchema = {"type": "array", "items": {"type": "string", "maxLength": 128}, "maxItems": 100}
_HASHES: JSONSchema = {
    "type": "object",
    "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "minProperties": 1,
    "maxProperties": 2000,
}
"""Upstream tool name -> the sha256 of the definition the admin saw."""
_RESULT: JSONSchema = {"type": "object", "properties": {"scope": {"type": "string"}}, "required": ["scope"]}
_SERVER: dict[str, JSONSchema] = {
    "name": _NAME,
    "url": {"type": "string", "minLength": 1, "maxLength": 2048},
    "command": {"type": "array", "items": {"type": "string"}},
    "stdio": {"type": "string", "pattern": SERVER_NAME_PATTERN},
    "prefix": {"type": "string", "pattern": PREFIX_PATTERN},
    "allow": _PATTERNS,
    "deny": _PATTERNS,
    "minimum_role": {"type": "string"},
    "tool_roles": {"type": "object", "additionalProperties": {"type": "string"}},
    "data_recipient": {"type": "string", "enum": ["third_party", "first_party", "processor"]},
    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
    "tool_timeouts": {"type": "object", "additionalProperties": {"type": "number"}},
    "auth": {
        "type": "object",
        "properties": {
            "kind": {
                "type": "string",
                "enum": ["none", "bearer", "header", "client_credentials", "token_exchange"],
            },
            "header": {"type": "string"},
            "secret": {"type": "string", "maxLength": 8192},
            "token_url": {"type": "string", "maxLength": 2048},
            "client_id": {"type": "string", "maxLength": 256},
            "scope": {"type": "string", "maxLength": 512},
            "audience": {"type": "string", "maxLength": 512},
            "resource": {"type": "string", "maxLength": 2048},
        },
        "additionalProperties": False,
    },
    "mtls": {"type": "boolean"},
    "pinning": {"type": "boolean", "default": True},
    "task_support": {
        "type": "object",
        "additionalProperties": {"type": "string", "enum": ["forbidden", "optional", "required"]},
        "maxProperties": 200,
    },
    "scope": _SCOPE,
}


def _object(properties: dict[str, JSONSchema], required: list[str]) -> JSONSchema:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def upstream_tool_specs(registering_role: str = DEFAULT_REGISTERING_ROLE) -> dict[str, ToolSpec]:
    """The upstream-server tools by name, requiring `registering_role`."""
    by_name = _object({"name": _NAME, "scope": _SCOPE}, ["name"])
    specs = (
        ToolSpec(
            name="register_server",
            title="Register an upstream MCP server",
            description=(
                "Put an MCP server (Streamable HTTP URL) behind the gateway for the tenant, or for the "
                "current session with scope 'session': its tools are discovered, pinned and exposed, "
                "and every call is recorded."
            ),
            input_schema=_object(_SERVER, ["name"]),
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="remove_server",
            title="Remove an upstream MCP server",
            description="Remove an upstream server and its tools from the tenant or the current session.",
            input_schema=by_name,
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="refresh_server",
            title="Rediscover an upstream MCP server",
            description=(
                "Discover the server's catalog again; changed definitions of pinned tools are recorded "
                "and held back until approve_server."
            ),
            input_schema=by_name,
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="approve_server",
            title="Approve pending definitions of an upstream server",
            description=(
                "Expose the pending tool definitions you name by the hashes you saw (list_servers' "
                "pending_hashes): the server is discovered again and an approval is refused, naming "
                "the tool, when the upstream now sends a different definition."
            ),
            input_schema=_object({"name": _NAME, "hashes": _HASHES, "scope": _SCOPE}, ["name", "hashes"]),
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="reject_server",
            title="Reject pending definitions of an upstream server",
            description=(
                "Record that you reject the pending tool definitions you name by hash: they stay "
                "unexposed (the approved previous definitions are still served) and are not pending "
                "again unless they change."
            ),
            input_schema=_object(
                {
                    "name": _NAME,
                    "hashes": _HASHES,
                    "reason": {"type": "string", "maxLength": 500},
                    "scope": _SCOPE,
                },
                ["name", "hashes"],
            ),
            output_schema=_RESULT,
            read_only=False,
            minimum_role=registering_role,
        ),
        ToolSpec(
            name="list_servers",
            title="List upstream MCP servers",
            description="The upstream servers of the tenant (and this session), their tools and health.",
            input_schema=_object({"scope": _SCOPE}, []),
            output_schema=_object({"servers": {"type": "array"}}, ["servers"]),
            minimum_role=registering_role,
        ),
    )
    return {
        spec.name: spec
        for spec in (*specs, *UPSTREAM_READ_SPECS, *UPSTREAM_SUBSCRIPTION_SPECS, *CATALOG_SPECS)
    }


RESOURCE_UPDATED_TOOL = "upstream_resource_updated"
"""The record of an upstream's notifications/resources/updated in the subscribing session."""
_URI: JSONSchema = _object({"uri": {"type": "string", "minLength": 1, "maxLength": 4096}}, ["uri"])
UPSTREAM_SUBSCRIPTION_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="upstream_resource_subscribe",
        title="Subscribe to an upstream server's resource",
        description=(
            "What resources/subscribe does for an upstream URI: the subscription is held on this "
            "session's upstream session, and each update is recorded in this session."
        ),
        input_schema=_URI,
        needs_session=True,
    ),
    ToolSpec(
        name="upstream_resource_unsubscribe",
        title="Unsubscribe from an upstream server's resource",
        description="What resources/unsubscribe does for an upstream URI.",
        input_schema=_URI,
        needs_session=True,
    ),
    ToolSpec(
        name=RESOURCE_UPDATED_TOOL,
        title="Record an upstream resource update",
        description=(
            "Recorded by the gateway when an upstream says a subscribed resource changed; the "
            "session's subscribers hear notifications/resources/updated."
        ),
        input_schema=_URI,
        needs_session=True,
    ),
)
"""resources/subscribe for upstream URIs, recorded like calls (consumers/upstreams/subscriptions/)."""


UPSTREAM_READ_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="upstream_resource_read",
        title="Read an upstream server's resource",
        description=(
            "Read a resource of an upstream MCP server by URI (what resources/read does for upstream "
            "URIs), recorded like a tool call."
        ),
        input_schema=_object({"uri": {"type": "string", "minLength": 1, "maxLength": 4096}}, ["uri"]),
    ),
    ToolSpec(
        name="upstream_complete",
        title="Complete an argument of an upstream prompt or resource template",
        description="What completion/complete does for an upstream server's prompts and resource templates.",
        input_schema=_object(
            {
                "ref": {"type": "object"},
                "argument": {"type": "object"},
                "context": {"type": "object"},
            },
            ["ref", "argument"],
        ),
    ),
    ToolSpec(
        name="upstream_prompt_get",
        title="Get an upstream server's prompt",
        description="Render a prompt of an upstream MCP server (what prompts/get does for upstream prompts).",
        input_schema=_object(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "arguments": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            ["name"],
        ),
    ),
)
"""What resources/read and prompts/get become for an upstream's resources and prompts: tool
calls on the bus, so they are recorded, sealed and erasable like every call."""


CATALOG_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="search_tools",
        title="Search the tools",
        description=(
            "Find tools you may call (built-in, registered and from upstream servers) by words in "
            "their names and descriptions; for large catalogs, instead of listing them all."
        ),
        input_schema=_object(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 500},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            ["query"],
        ),
        output_schema=_object({"tools": {"type": "array"}}, ["tools"]),
    ),
    ToolSpec(
        name="select_tools",
        title="Choose the tools this session lists",
        description=(
            "List only the registered and upstream tools matching these patterns (fnmatch, e.g. "
            "'github_*') in this session; an empty list lists every tool again."
        ),
        input_schema=_object(
            {"patterns": {"type": "array", "items": {"type": "string", "maxLength": 128}, "maxItems": 100}},
            ["patterns"],
        ),
        output_schema=_object({"patterns": {"type": "array"}}, ["patterns"]),
        needs_session=True,
        read_only=False,
    ),
)
"""Large catalogs without flooding an agent's context: search, and a per-session selection."""
