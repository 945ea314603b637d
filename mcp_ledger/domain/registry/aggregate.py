"""The ToolRegistry aggregate: a tenant's (or one session's) registered tools, by replay.

Owns versions and the decisions register (insert or update), remove and connect a data
source. It assumes definitions passed the registration rules (registration.py); it
refuses what only the registry's state can tell (unknown names, unknown data sources).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.bindings import SqlBinding
from mcp_ledger.domain.registry.events import (
    DataSourceConnected,
    ToolRegistered,
    ToolRemoved,
    ToolUpdated,
)
from mcp_ledger.domain.registry.model import RegisteredTool, ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError

REGISTRY_EVENTS: frozenset[str] = frozenset(
    {"ToolRegistered", "ToolUpdated", "ToolRemoved", "DataSourceConnected"}
)


@dataclass(frozen=True)
class DataSource:
    source: str
    dialect: str
    dsn: str
    tables: tuple[str, ...]


@dataclass
class ToolRegistry:
    """State of one registry stream; `version` is the number of events applied."""

    stream_id: str
    version: int = 0
    tools: dict[str, RegisteredTool] = field(default_factory=dict)
    data_sources: dict[str, DataSource] = field(default_factory=dict)
    history: list[DomainEvent] = field(default_factory=list)
    """Every event applied, for other state kept in the same stream (domain/upstreams/)."""

    def apply(self, event: DomainEvent) -> None:
        """Fold one event into the state."""
        self.version += 1
        self.history.append(event)
        if isinstance(event, ToolRegistered | ToolUpdated):
            self.tools[event.definition.name] = RegisteredTool(
                definition=event.definition, version=event.version
            )
        elif isinstance(event, ToolRemoved):
            self.tools.pop(event.name, None)
        elif isinstance(event, DataSourceConnected):
            self.data_sources[event.source] = DataSource(
                event.source, event.dialect, event.dsn, tuple(event.tables)
            )

    @classmethod
    def replay(cls, stream_id: str, events: Iterable[DomainEvent]) -> ToolRegistry:
        registry = cls(stream_id=stream_id)
        for event in events:
            registry.apply(event)
        return registry


def decide_registration(registry: ToolRegistry, definitions: Sequence[ToolDefinition]) -> list[DomainEvent]:
    """ToolRegistered for new names, ToolUpdated for changed ones, nothing for unchanged ones.

    Raises:
        RegistrationError: a SQL binding names a data source this registry has not connected.
    """
    problems = [
        f"{d.name}: unknown data source {d.binding.source!r}"
        for d in definitions
        if isinstance(d.binding, SqlBinding) and d.binding.source not in registry.data_sources
    ]
    if problems:
        raise RegistrationError(problems)
    events: list[DomainEvent] = []
    for definition in definitions:
        current = registry.tools.get(definition.name)
        if current is None:
            events.append(ToolRegistered(definition=definition, version=1))
        elif current.definition != definition:
            events.append(ToolUpdated(definition=definition, version=current.version + 1))
    return events


def decide_removal(registry: ToolRegistry, names: Sequence[str]) -> list[DomainEvent]:
    """ToolRemoved for each name.

    Raises:
        RegistrationError: a name is not registered here.
    """
    unknown = [name for name in names if name not in registry.tools]
    if unknown:
        raise RegistrationError([f"{name}: not registered" for name in unknown])
    return [ToolRemoved(name=name, version=registry.tools[name].version + 1) for name in names]


def decide_connection(registry: ToolRegistry, source: DataSource) -> list[DomainEvent]:
    """DataSourceConnected, unless this exact source is connected already.

    Raises:
        RegistrationError: the source name is taken by a different connection.
    """
    current = registry.data_sources.get(source.source)
    if current == source:
        return []
    if current is not None:
        raise RegistrationError([f"data source {source.source!r} is already connected to something else"])
    return [
        DataSourceConnected(
            source=source.source, dialect=source.dialect, dsn=source.dsn, tables=list(source.tables)
        )
    ]
