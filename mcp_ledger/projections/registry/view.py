"""The registry read model: one view per registry stream (tenant-wide, or one session's).

Pure folding, the same live and on rebuild. A view's checkpoint is its stream version, so an
event is applied only right after its predecessor: duplicates are skipped and a gap (an
event seen before its predecessor was projected) is never papered over.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.events import (
    DataSourceConnected,
    ToolRegistered,
    ToolRemoved,
    ToolUpdated,
)
from mcp_ledger.domain.registry.model import RegisteredTool
from mcp_ledger.domain.upstreams.events import (
    UpstreamCatalogRecorded,
    UpstreamServerRegistered,
    UpstreamServerRemoved,
    UpstreamToolChanged,
    UpstreamToolRejected,
    UpstreamToolsApproved,
)
from mcp_ledger.domain.upstreams.model import UpstreamServer


class DataSourceView(BaseModel):
    """A connected data source without its DSN: that may hold credentials, so it stays sealed
    in the event store and the SQL runner opens it at call time."""

    model_config = ConfigDict(frozen=True)

    source: str
    dialect: str
    tables: list[str]


class UpstreamView(BaseModel):
    """An upstream server as agents and `servers list` see it (its secret stays sealed)."""

    model_config = ConfigDict(frozen=True)

    server: UpstreamServer
    protocol_version: str | None = None
    tools: list[str] = Field(default_factory=list)
    pending: dict[str, str] = Field(default_factory=dict)
    """Upstream tools whose recorded definition waits for approval: name -> hash."""
    rejected: dict[str, str] = Field(default_factory=dict)
    """Upstream tools whose pending definition an admin rejected: name -> hash."""
    resources: list[dict[str, Any]] = Field(default_factory=list)
    resource_templates: list[dict[str, Any]] = Field(default_factory=list)
    prompts: list[dict[str, Any]] = Field(default_factory=list)


class RegistryView(BaseModel):
    """Tools of one registry; `session_id` None is the tenant-wide registry."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    session_id: str | None = None
    version: int = 0
    tools: dict[str, RegisteredTool] = Field(default_factory=dict)
    data_sources: dict[str, DataSourceView] = Field(default_factory=dict)
    upstreams: dict[str, UpstreamView] = Field(default_factory=dict)


def fold(view: RegistryView, event: DomainEvent) -> RegistryView:
    """The view after the next event of its stream."""
    changes: dict[str, object] = {"version": view.version + 1}
    if isinstance(event, ToolRegistered | ToolUpdated):
        registered = RegisteredTool(definition=event.definition, version=event.version)
        changes["tools"] = {**view.tools, event.definition.name: registered}
    elif isinstance(event, ToolRemoved):
        changes["tools"] = {name: tool for name, tool in view.tools.items() if name != event.name}
    elif isinstance(event, DataSourceConnected):
        source = DataSourceView(source=event.source, dialect=event.dialect, tables=event.tables)
        changes["data_sources"] = {**view.data_sources, event.source: source}
    else:
        upstreams = _fold_upstream(dict(view.upstreams), event)
        if upstreams is not None:
            changes["upstreams"] = upstreams
    return view.model_copy(update=changes)


def _fold_upstream(upstreams: dict[str, UpstreamView], event: DomainEvent) -> dict[str, UpstreamView] | None:
    if isinstance(event, UpstreamServerRegistered):
        current = upstreams.get(event.server.name)
        upstreams[event.server.name] = (
            UpstreamView(server=event.server)
            if current is None
            else current.model_copy(update={"server": event.server})
        )
        return upstreams
    if isinstance(event, UpstreamServerRemoved):
        upstreams.pop(event.server, None)
        return upstreams
    name = getattr(event, "server", None)
    current = upstreams.get(name) if isinstance(name, str) else None
    if current is None:
        return None
    update: dict[str, object] = {}
    if isinstance(event, UpstreamCatalogRecorded):
        update = {
            "protocol_version": event.protocol_version,
            "tools": [t.name for t in event.tools],
            "resources": [r.definition for r in event.resources],
            "resource_templates": [r.definition for r in event.resource_templates],
            "prompts": [p.definition for p in event.prompts],
        }
    elif isinstance(event, UpstreamToolChanged):
        update = {"pending": {**current.pending, event.tool: event.definition_hash}}
    elif isinstance(event, UpstreamToolsApproved):
        update = {
            "pending": {t: h for t, h in current.pending.items() if t not in event.approved},
            "rejected": {t: h for t, h in current.rejected.items() if t not in event.approved},
        }
    elif isinstance(event, UpstreamToolRejected):
        update = {
            "pending": {t: h for t, h in current.pending.items() if t != event.tool},
            "rejected": {**current.rejected, event.tool: event.definition_hash},
        }
    upstreams[current.server.name] = current.model_copy(update=update)
    return upstreams
