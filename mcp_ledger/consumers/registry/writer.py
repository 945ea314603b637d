"""Writing to tool registries: decide against the replayed registry, append, project.

Owns the registry side of registration commands (the register/import/connect tools call
it from inside a tool call): load the tenant's or session's registry stream, check the
definitions, decide, append with optimistic concurrency, idempotent by a command id
derived from the tool call's, publish on the fast path, and write the registry view
through so the caller reads its own registration on every replica. Personal fields (a data
source's DSN) are sealed by the mapper before they are stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from mcp_ledger.checks.registrations import check_registration
from mcp_ledger.consumers.mapping import EventMapper, command_key
from mcp_ledger.domain.catalog import RESERVED_TOOL_NAMES
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.aggregate import (
    DataSource,
    ToolRegistry,
    decide_connection,
    decide_registration,
    decide_removal,
)
from mcp_ledger.domain.registry.bindings import McpBinding
from mcp_ledger.domain.registry.model import ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError, RegistrationPolicy
from mcp_ledger.domain.streams import registry_stream
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.ports import ConcurrencyError, EventStore, StoredEvent
from mcp_ledger.projections.registry.projector import RegistryProjector

AppendedCallback = Callable[[Sequence[StoredEvent]], Awaitable[None]]
Decision = Callable[[ToolRegistry], list[DomainEvent]]


class RegistryBusyError(Exception):
    """Concurrent registrations kept winning; the tool call fails and may be retried."""


class RegistryWriter:
    """Registers, updates and removes tools in a tenant's or a session's registry."""

    def __init__(
        self,
        store: EventStore,
        projector: RegistryProjector,
        on_appended: AppendedCallback,
        policy: RegistrationPolicy,
        builtins: Mapping[str, ToolSpec],
        *,
        max_attempts: int = 5,
        mapper: EventMapper | None = None,
    ) -> None:
        self._mapper = mapper or EventMapper()
        self._store = store
        self._projector = projector
        self._on_appended = on_appended
        self._policy = policy
        self._builtins = builtins
        self._max_attempts = max_attempts

    async def load(self, tenant: str, session_id: str | None) -> ToolRegistry:
        stream_id = registry_stream(tenant, session_id)
        stored = await self._store.read_stream(stream_id)
        return ToolRegistry.replay(stream_id, [await self._mapper.to_domain(event) for event in stored])

    async def _reserved(self, tenant: str, session_id: str | None) -> frozenset[str]:
        names = set(self.builtins)
        if session_id is not None:
            names |= set((await self.load(tenant, None)).tools)
        return frozenset(names)

    async def check(
        self,
        tenant: str,
        session_id: str | None,
        definitions: list[ToolDefinition],
        *,
        upstream: bool = False,
    ) -> None:
        """The registration rules for this scope.

        Raises:
            RegistrationError: with every problem found.
        """
        reserved = await self._reserved(tenant, session_id)
        policy = RegistrationPolicy(
            allowed_hosts=self._policy.allowed_hosts,
            reserved_names=reserved,
            max_definition_bytes=self._policy.max_definition_bytes,
            # An upstream's catalog is one registration; hundreds of tools are normal there.
            max_tools=self._policy.max_tools * (5 if upstream else 1),
            upstream=upstream,
        )
        check_registration(definitions, policy)

    async def register(
        self, command: CallTool, session_id: str | None, definitions: list[ToolDefinition]
    ) -> tuple[int, list[StoredEvent]]:
        """Check and register (insert or update) definitions; returns (registry version, appended).

        Raises:
            RegistrationError: a rule is broken; nothing is registered.
            RegistryBusyError: lost every race.
        """
        await self.check(command.tenant, session_id, definitions)

        def decide(registry: ToolRegistry) -> list[DomainEvent]:
            taken = [
                f"{d.name}: clashes with the tool {b.tool!r} of the upstream server {b.server!r}"
                for d in definitions
                if d.name in registry.tools
                and isinstance(b := registry.tools[d.name].definition.binding, McpBinding)
            ]
            if taken:
                raise RegistrationError(taken)
            return decide_registration(registry, definitions)

        return await self._write(command, session_id, decide)

    async def remove(
        self, command: CallTool, session_id: str | None, names: list[str]
    ) -> tuple[int, list[StoredEvent]]:
        """Remove tools by name.

        Raises:
            RegistrationError: a name is not registered in that scope.
        """
        return await self._write(command, session_id, lambda registry: decide_removal(registry, names))

    async def connect(
        self, command: CallTool, source: DataSource, definitions: list[ToolDefinition]
    ) -> tuple[int, list[StoredEvent]]:
        """Connect a data source to the command's session and register its tools, in one append.

        Raises:
            RegistrationError: a rule is broken or the source name is taken.
        """
        assert command.session_id is not None
        await self.check(command.tenant, command.session_id, definitions)

        def decide(registry: ToolRegistry) -> list[DomainEvent]:
            connected = decide_connection(registry, source)
            for event in connected:
                registry.apply(event)
            return connected + decide_registration(registry, definitions)

        return await self._write(command, command.session_id, decide)

    @property
    def builtins(self) -> frozenset[str]:
        """The gateway's own tool names."""
        return frozenset(self._builtins) | RESERVED_TOOL_NAMES

    async def reserved(self, tenant: str, session_id: str | None) -> frozenset[str]:
        """Names a new tool in this scope may not take: built-ins, and the tenant's tools for
        a session's registry."""
        return await self._reserved(tenant, session_id)

    async def write(
        self, command: CallTool, session_id: str | None, decide: Decision
    ) -> tuple[int, list[StoredEvent]]:
        """Decide against the replayed registry and append, idempotent by the command (other
        writers of the registry stream, e.g. upstream servers, go through here).

        Raises:
            RegistrationError: the decision refused.
            RegistryBusyError: lost every race.
        """
        return await self._write(command, session_id, decide)

    async def _write(
        self, command: CallTool, session_id: str | None, decide: Decision
    ) -> tuple[int, list[StoredEvent]]:
        key = command_key(command, f"{command.command_id}:registry")
        recorded = await self._store.events_for_command(key)
        if recorded:
            return recorded[-1].version, recorded
        for _ in range(self._max_attempts):
            registry = await self.load(command.tenant, session_id)
            version = registry.version
            events = decide(registry)
            if not events:
                return version, []
            try:
                result = await self._store.append(
                    registry.stream_id,
                    version,
                    await self._mapper.to_new_events(command, events, registry.stream_id),
                    command=key,
                )
            except ConcurrencyError:
                continue
            appended = list(result.events)
            if not result.duplicate:
                for stored in appended:
                    await self._projector.apply(stored)
                await self._on_appended(appended)
            return appended[-1].version, appended
        raise RegistryBusyError(f"registry of {command.tenant} kept changing")
