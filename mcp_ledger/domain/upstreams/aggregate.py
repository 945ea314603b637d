"""Upstream servers of one registry stream, by replay, and what discovery decides.

`decide_discovery` turns a discovered catalog into events: the catalog recorded with its
hashes; tools new or changed exposed at once (first registration, approval, pinning off)
or held back as UpstreamToolChanged (pinned); an admin's approval exposes exactly the
hashes it names, refused when the upstream now sends another; a rejected definition is not
pending again (a different one is); tools gone removed. A name that would clash
with a built-in, a registered tool or another upstream's tool refuses the whole discovery,
naming what it clashes with. Pure: the worker connects, this decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.aggregate import ToolRegistry
from mcp_ledger.domain.registry.bindings import McpBinding
from mcp_ledger.domain.registry.events import ToolRegistered, ToolRemoved, ToolUpdated
from mcp_ledger.domain.registry.model import TOOL_NAME_PATTERN, ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.upstreams.events import (
    UpstreamCatalogRecorded,
    UpstreamDefinition,
    UpstreamServerRegistered,
    UpstreamServerRemoved,
    UpstreamToolChanged,
    UpstreamToolRejected,
    UpstreamToolsApproved,
)
from mcp_ledger.domain.upstreams.model import UpstreamServer

MAX_DESCRIPTION = 4000


@dataclass
class ServerState:
    server: UpstreamServer
    catalog: UpstreamCatalogRecorded | None = None
    pending: dict[str, str] = field(default_factory=dict)
    """Tool -> hash of a definition recorded but not exposed (pinned)."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Tool -> hash of a definition an admin rejected: not exposed, not pending again."""


@dataclass
class Upstreams:
    """The upstream servers of one registry stream."""

    servers: dict[str, ServerState] = field(default_factory=dict)

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, UpstreamServerRegistered):
            previous = self.servers.get(event.server.name)
            self.servers[event.server.name] = (
                ServerState(event.server)
                if previous is None
                else ServerState(event.server, previous.catalog, previous.pending, previous.rejected)
            )
        elif isinstance(event, UpstreamServerRemoved):
            self.servers.pop(event.server, None)
        elif isinstance(event, UpstreamCatalogRecorded) and event.server in self.servers:
            self.servers[event.server].catalog = event
        elif isinstance(event, UpstreamToolChanged) and event.server in self.servers:
            self.servers[event.server].pending[event.tool] = event.definition_hash
        elif isinstance(event, UpstreamToolsApproved) and event.server in self.servers:
            state = self.servers[event.server]
            for tool in event.approved:
                state.pending.pop(tool, None)
                state.rejected.pop(tool, None)
        elif isinstance(event, UpstreamToolRejected) and event.server in self.servers:
            state = self.servers[event.server]
            state.pending.pop(event.tool, None)
            state.rejected[event.tool] = event.definition_hash

    @classmethod
    def replay(cls, events: Iterable[DomainEvent]) -> Upstreams:
        upstreams = cls()
        for event in events:
            upstreams.apply(event)
        return upstreams


def exposed_definition(server: UpstreamServer, tool: UpstreamDefinition) -> ToolDefinition:
    """The registered-tool definition agents see for an upstream tool."""
    raw = tool.definition
    name = server.exposed_name(tool.name)
    description = str(raw.get("description") or f"{tool.name} (from the upstream server {server.name})")
    annotations = raw.get("annotations")
    return ToolDefinition(
        name=name,
        title=str(raw.get("title") or (annotations or {}).get("title") or ""),
        description=description[:MAX_DESCRIPTION],
        input_schema=dict(raw.get("inputSchema") or {"type": "object"}),
        output_schema=raw.get("outputSchema"),
        binding=McpBinding(
            server=server.name,
            tool=tool.name,
            definition_hash=tool.hash,
            annotations=dict(annotations or {}),
            icons=tuple(raw.get("icons") or ()),
            meta=dict(raw.get("_meta") or {}),
            timeout_s=server.timeout_for(tool.name),
            task_support=server.task_support_for(tool.name),
        ),
        minimum_role=server.role_for(tool.name),
        data_recipient=server.data_recipient,
    )


def _clash(
    name: str, server: str, registry: ToolRegistry, reserved: frozenset[str], builtins: frozenset[str]
) -> str | None:
    if name in builtins:
        return f"{name}: clashes with the built-in tool {name!r}; give the server a prefix"
    if name in reserved:
        return f"{name}: clashes with the tenant-wide tool {name!r}; give the server a prefix"
    current = registry.tools.get(name)
    if current is None:
        return None
    binding = current.definition.binding
    if isinstance(binding, McpBinding):
        if binding.server == server:
            return None
        return f"{name}: clashes with the tool {binding.tool!r} of the upstream server {binding.server!r}"
    return f"{name}: clashes with the registered tool {name!r}"


def _exposable(server: UpstreamServer, tools: list[UpstreamDefinition]) -> list[UpstreamDefinition]:
    pattern = re.compile(TOOL_NAME_PATTERN)
    return [t for t in tools if server.exposes(t.name) and pattern.match(server.exposed_name(t.name))]


def decide_discovery(
    registry: ToolRegistry,
    upstreams: Upstreams,
    catalog: UpstreamCatalogRecorded,
    reserved: frozenset[str],
    *,
    builtins: frozenset[str] = frozenset(),
    approve: bool = False,
    approved: Mapping[str, str] | None = None,
) -> list[DomainEvent]:
    """The events for a catalog just discovered at a registered server.

    `reserved`: names taken in this scope (the gateway's tools, the tenant's for a session);
    `builtins`: those of them that are the gateway's own (for the refusal's wording);
    `approve`: expose every discovered definition (a registration approves what it found);
    `approved`: expose only these (tool -> the hash the admin saw), each of which must be
    what the upstream sends now and a pending (or rejected) definition; the rest stay pinned.

    Raises:
        RegistrationError: the server is not registered here, exposed names clash, or an
            approved hash is not what is pending and sent now (naming the tool).
    """
    state = upstreams.servers.get(catalog.server)
    if state is None:
        raise RegistrationError([f"upstream server {catalog.server!r} is not registered here"])
    server = state.server
    first = state.catalog is None
    tools = _exposable(server, catalog.tools)
    problems = [
        p
        for t in tools
        if (p := _clash(server.exposed_name(t.name), server.name, registry, reserved, builtins))
    ]
    if problems:
        raise RegistrationError(problems)
    events: list[DomainEvent] = []
    if state.catalog is None or _digest(state.catalog) != _digest(catalog):
        events.append(catalog)
    exposed = {
        b.tool: (name, t.version, b.definition_hash, t.definition)
        for name, t in registry.tools.items()
        if isinstance(b := t.definition.binding, McpBinding) and b.server == server.name
    }
    if approved is not None:
        problems = approval_problems(state, tools, approved, {t: c[2] for t, c in exposed.items()})
        if problems:
            raise RegistrationError(problems)
    immediate = first or approve or not server.pinning
    for tool in tools:
        current = exposed.get(tool.name)
        if not (immediate or tool.name in (approved or {})):
            known = (state.pending.get(tool.name), state.rejected.get(tool.name))
            if (current is None or current[2] != tool.hash) and tool.hash not in known:
                previous = None if current is None else current[2]
                changed = UpstreamToolChanged(
                    server=server.name, tool=tool.name, previous_hash=previous, definition_hash=tool.hash
                )
                events.append(changed)
            continue
        events += _exposure(exposed_definition(server, tool), current)
    kept = {t.name for t in tools}
    events += [ToolRemoved(name=n, version=v + 1) for tool, (n, v, *_) in exposed.items() if tool not in kept]
    if approve:
        events.append(UpstreamToolsApproved(server=server.name, approved={t.name: t.hash for t in tools}))
    elif approved:
        events.append(UpstreamToolsApproved(server=server.name, approved=dict(approved)))
    return events


def approval_problems(
    state: ServerState,
    tools: list[UpstreamDefinition],
    approved: Mapping[str, str],
    exposed: Mapping[str, str],
) -> list[str]:
    """Why an approval of these hashes (tool -> sha256 the admin saw) cannot stand, naming each
    tool: the upstream sends another definition now, no longer offers the tool, or the hash
    is neither pending, rejected nor exposed. Empty: approve."""
    if not approved:
        return ["name the definitions you approve (tool -> definition hash, as servers list shows)"]
    offered = {t.name: t.hash for t in tools}
    problems = []
    for tool, digest in sorted(approved.items()):
        now = offered.get(tool)
        if now is None:
            problems.append(f"{tool}: the upstream server {state.server.name!r} does not offer it now")
        elif now != digest:
            problems.append(
                f"{tool}: its definition changed since it was shown (approved {digest[:12]}…, "
                f"the upstream now sends {now[:12]}…); nothing approved, look at it again"
            )
        elif digest not in (state.pending.get(tool), state.rejected.get(tool), exposed.get(tool)):
            problems.append(f"{tool}: {digest[:12]}… is not a pending definition of {state.server.name!r}")
    return problems


def decide_rejection(
    upstreams: Upstreams, name: str, rejected: Mapping[str, str], by: str, reason: str | None
) -> list[DomainEvent]:
    """One UpstreamToolRejected per named pending definition (tool -> the hash the admin saw).

    Raises:
        RegistrationError: no server of that name here, nothing named, or a named hash is not
            the tool's pending definition (naming the tool): nothing is rejected.
    """
    state = upstreams.servers.get(name)
    if state is None:
        raise RegistrationError([f"upstream server {name!r} is not registered here"])
    if not rejected:
        raise RegistrationError(["name the definitions you reject (tool -> definition hash)"])
    problems = [
        f"{tool}: {digest[:12]}… is not its pending definition (pending: {state.pending[tool][:12]}…)"
        if tool in state.pending
        else f"{tool}: no definition of it is pending at {name!r}"
        for tool, digest in sorted(rejected.items())
        if state.pending.get(tool) != digest
    ]
    if problems:
        raise RegistrationError(problems)
    return [
        UpstreamToolRejected(server=name, tool=tool, definition_hash=digest, rejected_by=by, reason=reason)
        for tool, digest in sorted(rejected.items())
    ]


def _exposure(
    definition: ToolDefinition, current: tuple[str, int, str, ToolDefinition] | None
) -> list[DomainEvent]:
    if current is None:
        return [ToolRegistered(definition=definition, version=1)]
    name, version, _, exposed = current
    if name != definition.name:  # the prefix changed
        return [ToolRemoved(name=name, version=version + 1), ToolRegistered(definition=definition, version=1)]
    if exposed == definition:
        return []
    return [ToolUpdated(definition=definition, version=version + 1)]


def _digest(catalog: UpstreamCatalogRecorded) -> Any:
    return catalog.model_dump(mode="json")


def decide_server_removal(registry: ToolRegistry, upstreams: Upstreams, name: str) -> list[DomainEvent]:
    """The server's tools removed, then the server.

    Raises:
        RegistrationError: no server of that name here.
    """
    if name not in upstreams.servers:
        raise RegistrationError([f"upstream server {name!r} is not registered here"])
    removed: list[DomainEvent] = [
        ToolRemoved(name=tool_name, version=tool.version + 1)
        for tool_name, tool in registry.tools.items()
        if isinstance(b := tool.definition.binding, McpBinding) and b.server == name
    ]
    return [*removed, UpstreamServerRemoved(server=name)]
