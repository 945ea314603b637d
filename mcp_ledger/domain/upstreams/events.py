"""The events of upstream servers, written to the registry stream of their scope
(tenant:{t}:registry, or one session's) beside the tools they expose.

An upstream's entry, each discovered catalog (every definition with its hash), each change
to a pinned tool held back from agents, approvals, rejections and removal. The tools agents see are
still ToolRegistered/ToolUpdated/ToolRemoved with an MCP binding, so listing, roles and
calls treat them like every registered tool. Everything here is tenant configuration and
stays readable (domain/personal.NOT_PERSONAL) but for the static secret, which is sealed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.events import EVENT_TYPES, DomainEvent
from mcp_ledger.domain.personal import Personal
from mcp_ledger.domain.upstreams.model import UpstreamServer, definition_hash


class UpstreamDefinition(BaseModel):
    """One definition (tool, resource, template or prompt) as the upstream sent it, hashed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=2048)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    definition: dict[str, Any]

    @classmethod
    def of(cls, name: str, definition: dict[str, Any]) -> UpstreamDefinition:
        return cls(name=name, hash=definition_hash(definition), definition=definition)


class UpstreamServerRegistered(DomainEvent):
    """An upstream joined (or was reconfigured in) a registry; `secret` is the static header
    value or client secret, sealed with the registering subject's key."""

    server: UpstreamServer
    secret: Personal[str | None] = None


class UpstreamCatalogRecorded(DomainEvent):
    """What discovery found at the upstream: every definition with its hash."""

    server: str
    protocol_version: str
    tools: list[UpstreamDefinition]
    resources: list[UpstreamDefinition] = Field(default_factory=list)
    resource_templates: list[UpstreamDefinition] = Field(default_factory=list)
    prompts: list[UpstreamDefinition] = Field(default_factory=list)


class UpstreamToolChanged(DomainEvent):
    """A pinned tool's definition changed (or a new tool appeared) at the upstream: recorded,
    not exposed until approved. `previous_hash` is None for a tool new to this server."""

    server: str
    tool: str
    previous_hash: str | None
    definition_hash: str


class UpstreamToolsApproved(DomainEvent):
    """An admin approved these definitions (tool name -> hash): exactly the hashes the
    approval named (every discovered tool when a registration approves what it found)."""

    server: str
    approved: dict[str, str]


class UpstreamToolRejected(DomainEvent):
    """An admin rejected a pending definition: it stays unexposed (the approved previous
    definition, if any, is still served) and is not pending again unless it changes."""

    server: str
    tool: str
    definition_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    rejected_by: str
    reason: Personal[str | None] = None


class UpstreamServerRemoved(DomainEvent):
    server: str


class UpstreamProgressed(DomainEvent):
    """An upstream reported progress on a call: relayed to the agent's request, never stored
    (a notification on the progress topic, its message sealed like event data)."""

    command_id: str
    progress: float
    total: float | None = None
    message: Personal[str | None] = None


class UpstreamLogged(DomainEvent):
    """An upstream sent a log notification during a call: relayed, never stored."""

    command_id: str
    level: str
    logger: Personal[str | None] = None
    data: Personal[Any] = None


class SessionToolsSelected(DomainEvent):
    """A session narrowed the tools it lists to these fnmatch patterns (empty: all again);
    the gateway's own tools are always listed. In the session's stream."""

    patterns: Personal[list[str]]


INPUT_ROUND = "input_required"
"""The method of an UpstreamInputRequested carrying one whole input_required round of a
2026-07-28 upstream (params: {"inputRequests": {key: request}}, the upstream's keys); its
answer's result is the agent's inputResponses under the same keys."""


ABANDONED_HEADER = "abandoned"
"""The reply-topic header naming a command whose agent's request ended unanswered (the agent
disconnected, or the API stopped waiting): nobody can answer that command's upstream
requests any more. Headed by the request's authenticated tenant and subject; no body."""


class UpstreamInputRequested(DomainEvent):
    """An upstream asked the agent for input during a call (sampling, elicitation, roots):
    relayed to the API replica holding the call, never stored."""

    command_id: str
    request_id: str
    method: str
    params: Personal[Any] = None


class UpstreamInputAnswered(DomainEvent):
    """The agent's answer to an UpstreamInputRequested, relayed to the waiting worker, never
    stored: its JSON-RPC result, or its error."""

    request_id: str
    result: Personal[Any] = None
    error: Personal[Any] = None


def input_answer_scope(request_id: str) -> str:
    """The sealing scope of an UpstreamInputAnswered: its request's unguessable id, which only
    the worker that asked and the agent's API replica know."""
    return f"backchannel:{request_id}"


UPSTREAM_EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        UpstreamServerRegistered,
        UpstreamCatalogRecorded,
        UpstreamToolChanged,
        UpstreamToolsApproved,
        UpstreamToolRejected,
        UpstreamServerRemoved,
    )
}
UPSTREAM_EVENTS: frozenset[str] = frozenset(UPSTREAM_EVENT_TYPES)
"""The upstream events of registry streams (UpstreamProgressed is never stored)."""
EVENT_TYPES.update(UPSTREAM_EVENT_TYPES)
EVENT_TYPES[UpstreamProgressed.__name__] = UpstreamProgressed
EVENT_TYPES[SessionToolsSelected.__name__] = SessionToolsSelected
EVENT_TYPES[UpstreamLogged.__name__] = UpstreamLogged
EVENT_TYPES[UpstreamInputRequested.__name__] = UpstreamInputRequested
EVENT_TYPES[UpstreamInputAnswered.__name__] = UpstreamInputAnswered
