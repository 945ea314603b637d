"""What an upstream MCP server is to the gateway: its registry entry, as data.

An `UpstreamServer` names a server agents reach through the gateway: where it is (a
Streamable HTTP URL; a stdio command only from operator configuration), how its tools are
named here (an optional prefix), which of them are exposed (allow/deny patterns), who may
call them (per-tool roles), who receives the data (`data_recipient`), timeouts, how the
gateway authenticates to it, and whether changed definitions wait for approval (pinning).
The secret of a static header lives in `UpstreamSecret`, sealed in the store and never
shown back. Hashing a definition (canonical JSON, sha256) is here too; connecting is not.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.personal import DataRecipient
from mcp_ledger.domain.tools import TaskSupport

SERVER_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,39}$"
PREFIX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$"
Pattern = str
AuthKind = Literal["none", "bearer", "header", "client_credentials", "token_exchange"]


class UpstreamAuth(BaseModel):
    """How the gateway authenticates to the upstream (never with the agent's own token).

    `bearer` and `header` send a static secret (kept in UpstreamSecret, sealed);
    `client_credentials` is OAuth 2.1 client credentials at `token_url` with `client_id` and
    the sealed client secret; `token_exchange` is RFC 8693 token exchange at `token_url` (same
    client authentication) for a per-user token, asking for `audience`, `resource` and `scope`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AuthKind = "none"
    header: str = Field("authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    token_url: str | None = Field(None, max_length=2048)
    client_id: str | None = Field(None, max_length=256)
    scope: str | None = Field(None, max_length=512)
    audience: str | None = Field(None, max_length=512)
    resource: str | None = Field(None, max_length=2048)


class UpstreamServer(BaseModel):
    """One upstream server's registry entry (tenant-wide or one session's, by the stream)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=SERVER_NAME_PATTERN)
    url: str | None = Field(None, max_length=2048)
    command: tuple[str, ...] = ()
    """A stdio server's argv: only ever from operator configuration (settings), never from a
    call or HTTP; the registration tools refuse it."""
    prefix: str | None = Field(None, pattern=PREFIX_PATTERN)
    allow: tuple[Pattern, ...] = ()
    deny: tuple[Pattern, ...] = ()
    minimum_role: str | None = None
    tool_roles: dict[str, str] = Field(default_factory=dict)
    """Per upstream tool name: the minimum role (overrides `minimum_role`)."""
    data_recipient: DataRecipient = "third_party"
    timeout_s: float = Field(60.0, gt=0, le=3600)
    tool_timeouts: dict[str, float] = Field(default_factory=dict)
    auth: UpstreamAuth = Field(default_factory=UpstreamAuth)
    mtls: bool = False
    """Present the gateway's configured client certificate (settings), as for HTTP tools."""
    pinning: bool = True
    task_support: dict[Pattern, TaskSupport] = Field(default_factory=dict)
    """Which upstream tools the gateway runs as MCP tasks, by tool name or fnmatch pattern
    (an exact name wins over a pattern, `*` is the default): the upstream need know nothing
    of tasks, the task machinery is the gateway's. Unnamed tools are `forbidden`."""

    def exposes(self, tool: str) -> bool:
        """Whether an upstream tool passes the allow/deny patterns (deny wins)."""
        if any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.deny):
            return False
        return not self.allow or any(fnmatch.fnmatchcase(tool, pattern) for pattern in self.allow)

    def exposed_name(self, tool: str) -> str:
        return f"{self.prefix}_{tool}" if self.prefix else tool

    def role_for(self, tool: str) -> str | None:
        return self.tool_roles.get(tool, self.minimum_role)

    def task_support_for(self, tool: str) -> TaskSupport:
        """The named tool's task support: its own entry, else the first matching pattern."""
        if tool in self.task_support:
            return self.task_support[tool]
        matches = (mode for pattern, mode in self.task_support.items() if fnmatch.fnmatchcase(tool, pattern))
        return next(matches, "forbidden")

    def timeout_for(self, tool: str) -> float:
        return min(self.tool_timeouts.get(tool, self.timeout_s), 3600.0)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same definition always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_hash(definition: dict[str, Any]) -> str:
    """sha256 of a definition's canonical JSON (hex)."""
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()
