"""Tool bindings: how a registered tool runs, as data. Never code.

A binding names an HTTP operation (method, URL template, where each argument goes) or a
SQL table operation (data source, table, columns). Runners in consumers/ interpret them;
nothing in a binding is ever evaluated, imported or executed. Unknown fields are refused,
so a registration cannot smuggle anything a runner might later pick up. An HTTP path is an
RFC 6570 level-1 template: `{name}` only, each a declared path parameter; the rules are
applied at registration (path_template_problems), the encoding at call time (the runner).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.tools import TaskSupport

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
"""SQL identifiers we accept in bindings: plain names only, so quoting is never in question."""

PATH_VARIABLE = re.compile(r"\{([^{}]*)\}")
"""A `{name}` of a path template."""
_OPERATORS = set("+#./;?&=,!@|")
"""RFC 6570 operators: `{+x}` and `{/x}` would let a value carry `/`; only `{x}` is offered."""

HttpMethod = Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]
IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods a runner may retry (RFC 9110 section 9.2.2); POST and PATCH are never retried."""


class HttpBinding(BaseModel):
    """One HTTP operation. `path` is a template whose {names} come from path arguments."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["http"] = "http"
    method: HttpMethod
    base_url: str = Field(min_length=1, max_length=2048)
    path: str = Field("/", max_length=2048, pattern=r"^/[^\s]*$")
    parameters: dict[str, Literal["path", "query", "header"]] = Field(default_factory=dict)
    body_argument: str | None = None
    """The input property sent as the JSON request body, if any."""
    timeout_s: float = Field(10.0, gt=0, le=120)
    retries: int = Field(2, ge=0, le=5)
    mtls: bool = False
    """Present the gateway's configured client certificate (settings), never one named here."""

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT_METHODS


def path_template_problems(binding: HttpBinding) -> list[str]:
    """Why the binding's URL template could let an argument change the request's path."""
    problems: list[str] = []
    names = PATH_VARIABLE.findall(binding.path)
    if "{" in PATH_VARIABLE.sub("", binding.path) or "}" in PATH_VARIABLE.sub("", binding.path):
        problems.append(f"path {binding.path!r}: unbalanced braces")
    problems += [
        f"path variable {{{name}}}: only simple {{name}} expansion is supported"
        for name in names
        if not name or name[0] in _OPERATORS
    ]
    declared = {name for name, where in binding.parameters.items() if where == "path"}
    problems += [
        f"path variable {{{n}}} is not a declared path parameter" for n in names if n not in declared
    ]
    problems += [f"path parameter {n!r} does not appear in the path" for n in sorted(declared - set(names))]
    if any(segment in {".", ".."} for segment in binding.path.split("/")):
        problems.append(f"path {binding.path!r}: '.' and '..' segments are not allowed")
    if "?" in binding.path or "#" in binding.path:
        problems.append(f"path {binding.path!r}: query and fragment belong in parameters")
    try:
        parts = urlsplit(binding.base_url)
    except ValueError:
        return [*problems, f"base_url {binding.base_url!r} is not a URL"]
    if parts.query or parts.fragment or "{" in binding.base_url:
        problems.append("base_url may not carry a query, a fragment or template variables")
    return problems


SqlOperation = Literal["read", "query", "insert", "update", "delete", "related"]
WRITE_OPERATIONS: frozenset[str] = frozenset({"insert", "update", "delete"})


class SqlBinding(BaseModel):
    """One operation on one reflected table of a session's data source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["sql"] = "sql"
    source: str = Field(pattern=IDENTIFIER)
    table: str = Field(pattern=IDENTIFIER)
    schema_name: str | None = Field(None, pattern=IDENTIFIER)
    operation: SqlOperation
    columns: tuple[Annotated[str, Field(pattern=IDENTIFIER)], ...]
    key_columns: tuple[Annotated[str, Field(pattern=IDENTIFIER)], ...] = ()
    related_table: str | None = Field(None, pattern=IDENTIFIER)
    """For `related`: the table whose foreign key points at `table`."""
    related_columns: tuple[Annotated[str, Field(pattern=IDENTIFIER)], ...] = ()
    related_foreign_key: tuple[Annotated[str, Field(pattern=IDENTIFIER)], ...] = ()
    """For `related`: columns of related_table referring to key_columns of `table`, in order."""
    max_rows: int = Field(100, ge=1, le=1000)

    @property
    def writes(self) -> bool:
        return self.operation in WRITE_OPERATIONS


class McpBinding(BaseModel):
    """A tool of an upstream MCP server (domain/upstreams/): which server, which of its tools,
    the definition's hash (what was approved) and its MCP presentation as the upstream sent it.

    Only upstream discovery makes these; a tool registration naming one is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["mcp"] = "mcp"
    server: str = Field(min_length=1, max_length=64)
    tool: str = Field(min_length=1, max_length=128)
    """The tool's name at the upstream (the exposed name may carry the server's prefix)."""
    definition_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    annotations: dict[str, Any] = Field(default_factory=dict)
    icons: tuple[dict[str, Any], ...] = ()
    meta: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(60.0, gt=0, le=3600)
    task_support: TaskSupport = "forbidden"
    """The gateway's decision (the server entry's `task_support`), not the upstream's."""

    @property
    def writes(self) -> bool:
        return not bool(self.annotations.get("readOnlyHint", False))

    @property
    def idempotent(self) -> bool:
        """Retried after a transport failure only when the upstream says it is safe."""
        return bool(self.annotations.get("readOnlyHint")) or bool(self.annotations.get("idempotentHint"))


ToolBinding = Annotated[HttpBinding | SqlBinding | McpBinding, Field(discriminator="kind")]
