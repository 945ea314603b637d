"""The events of tool registries (tenant:{t}:registry, or one session's): tools registered,
updated and removed, and data sources connected.

They register themselves in events.EVENT_TYPES (the domain package imports this module).
Definitions, tool names and data-source names are tenant configuration, kept readable on
domain/personal.NOT_PERSONAL so registry views are built without any subject's key; a data
source's DSN is sealed.
"""

from __future__ import annotations

from mcp_ledger.domain.events import EVENT_TYPES, DomainEvent
from mcp_ledger.domain.personal import Personal
from mcp_ledger.domain.registry.model import ToolDefinition


class ToolRegistered(DomainEvent):
    """A tool joined a registry (tenant-wide or one session's, by the stream) at version 1."""

    definition: ToolDefinition
    version: int


class ToolUpdated(DomainEvent):
    definition: ToolDefinition
    version: int


class ToolRemoved(DomainEvent):
    name: str
    version: int


class DataSourceConnected(DomainEvent):
    """A session connected a SQL data source; its DSN may hold credentials, hence personal."""

    source: str
    dialect: str
    dsn: Personal[str]
    tables: list[str]


REGISTRY_EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls for cls in (ToolRegistered, ToolUpdated, ToolRemoved, DataSourceConnected)
}
EVENT_TYPES.update(REGISTRY_EVENT_TYPES)
