"""The registry read model: one view per registry stream (tenant-wide, or one session's).

Pure folding, the same live and on rebuild. A view's checkpoint is its stream version, so an
event is applied only right after its predecessor: duplicates are skipped and a gap (an
event seen before its predecessor was projected) is never papered over.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.events import (
    DataSourceConnected,
    ToolRegistered,
    ToolRemoved,
    ToolUpdated,
)
from mcp_ledger.domain.registry.model import RegisteredTool


class DataSourceView(BaseModel):
    """A connected data source without its DSN: that may hold credentials, so it stays sealed
    in the event store and the SQL runner opens it at call time."""

    model_config = ConfigDict(frozen=True)

    source: str
    dialect: str
    tables: list[str]


class RegistryView(BaseModel):
    """Tools of one registry; `session_id` None is the tenant-wide registry."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    session_id: str | None = None
    version: int = 0
    tools: dict[str, RegisteredTool] = Field(default_factory=dict)
    data_sources: dict[str, DataSourceView] = Field(default_factory=dict)


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
    return view.model_copy(update=changes)
