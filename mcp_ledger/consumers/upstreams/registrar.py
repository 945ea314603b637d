"""Registering upstream servers: check, discover, decide, append to the registry stream.

Owns the worker side of register_server, refresh_server, approve_server, reject_server,
remove_server and list_servers. Registration checks the entry (no stdio from a call, URL on the
allowlist), connects with the SDK client and discovers the catalog, then appends the entry
and what discovery decided (domain/upstreams/aggregate.py) in one append through the
registry writer: the same idempotency, concurrency and projection as registered tools.
Refresh and approve discover again; approve also exposes the changed pinned definitions
whose hashes it names (refused when the upstream now sends another). Reject records an
admin's rejection of pending definitions without contacting the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from mcp_ledger.consumers.registry.writer import RegistryWriter
from mcp_ledger.consumers.upstreams.calls import UpstreamCalls
from mcp_ledger.consumers.upstreams.connection import UpstreamConnector, UpstreamTarget
from mcp_ledger.consumers.upstreams.discovery import discover
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.aggregate import ToolRegistry
from mcp_ledger.domain.registry.events import ToolRegistered, ToolUpdated
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.upstreams.aggregate import (
    Upstreams,
    decide_discovery,
    decide_rejection,
    decide_server_removal,
)
from mcp_ledger.domain.upstreams.events import UpstreamCatalogRecorded, UpstreamServerRegistered
from mcp_ledger.domain.upstreams.model import UpstreamServer
from mcp_ledger.eventstore.ports import StoredEvent

log = logging.getLogger(__name__)


class UpstreamRegistrar:
    """Writes upstream entries and their discovered catalogs."""

    def __init__(self, writer: RegistryWriter, connector: UpstreamConnector, calls: UpstreamCalls) -> None:
        self._writer = writer
        self._connector = connector
        self._calls = calls

    async def _discover(self, target: UpstreamTarget) -> UpstreamCatalogRecorded:
        connection = await self._connector.open(target)
        try:
            return await discover(connection.client, target.server.name)
        finally:
            await connection.close()

    async def _check(self, command: CallTool, scope: str | None, events: list[DomainEvent]) -> None:
        definitions = [e.definition for e in events if isinstance(e, ToolRegistered | ToolUpdated)]
        if definitions:
            await self._writer.check(command.tenant, scope, definitions, upstream=True)

    async def register(
        self, command: CallTool, scope: str | None, server: UpstreamServer, secret: str | None
    ) -> tuple[int, list[StoredEvent]]:
        """Register (or reconfigure) a server and expose its discovered tools.

        Raises:
            RegistrationError: refused (clash, rules); nothing is written.
            ToolExecutionError: the upstream cannot be reached or listed.
        """
        catalog = await self._discover(UpstreamTarget(server, secret, command.tenant, scope, command.subject))
        reserved = await self._writer.reserved(command.tenant, scope)
        registered = UpstreamServerRegistered(server=server, secret=secret)

        def decide(registry: ToolRegistry) -> list[DomainEvent]:
            upstreams = Upstreams.replay(registry.history)
            upstreams.apply(registered)
            return [
                registered,
                *decide_discovery(
                    registry, upstreams, catalog, reserved, builtins=self._writer.builtins, approve=True
                ),
            ]

        await self._check(command, scope, decide(await self._writer.load(command.tenant, scope)))
        return await self._writer.write(command, scope, decide)

    async def refresh(
        self, command: CallTool, scope: str | None, name: str, *, approved: Mapping[str, str] | None = None
    ) -> tuple[int, list[StoredEvent]]:
        """Discover again; changed pinned tools are held back but for the `approved` ones (tool
        -> the hash the admin saw), exposed only when that is what the upstream sends now.

        Raises:
            RegistrationError: not registered here, names clash, or an approved hash is stale.
            ToolExecutionError: the upstream cannot be reached or listed.
        """
        registry = await self._writer.load(command.tenant, scope)
        state = Upstreams.replay(registry.history).servers.get(name)
        if state is None:
            raise RegistrationError([f"upstream server {name!r} is not registered here"])
        catalog = await self._discover(
            await self._calls.target(command.tenant, scope, state.server, subject=command.subject)
        )
        reserved = await self._writer.reserved(command.tenant, scope)

        def decide(registry: ToolRegistry) -> list[DomainEvent]:
            upstreams = Upstreams.replay(registry.history)
            return decide_discovery(
                registry, upstreams, catalog, reserved, builtins=self._writer.builtins, approved=approved
            )

        await self._check(command, scope, decide(registry))
        return await self._writer.write(command, scope, decide)

    async def reject(
        self, command: CallTool, scope: str | None, name: str, rejected: Mapping[str, str], reason: str | None
    ) -> tuple[int, list[StoredEvent]]:
        """Record the rejection of these pending definitions (tool -> the hash the admin saw),
        by the command's subject; nothing is discovered or exposed.

        Raises:
            RegistrationError: not registered here, or a hash is not the tool's pending one."""
        return await self._writer.write(
            command,
            scope,
            lambda registry: decide_rejection(
                Upstreams.replay(registry.history), name, rejected, command.subject, reason
            ),
        )

    async def remove(self, command: CallTool, scope: str | None, name: str) -> tuple[int, list[StoredEvent]]:
        """Raises:
        RegistrationError: not registered here."""
        return await self._writer.write(
            command,
            scope,
            lambda registry: decide_server_removal(registry, Upstreams.replay(registry.history), name),
        )

    async def listing(self, tenant: str, scopes: list[str | None]) -> list[dict[str, Any]]:
        """Every server of these scopes with its tools, pending changes and this worker's health."""
        servers: list[dict[str, Any]] = []
        for scope in scopes:
            registry = await self._writer.load(tenant, scope)
            for name, state in Upstreams.replay(registry.history).servers.items():
                exposed = sorted(
                    tool_name
                    for tool_name, tool in registry.tools.items()
                    if getattr(tool.definition.binding, "server", None) == name
                )
                servers.append(
                    {
                        "name": name,
                        "scope": "tenant" if scope is None else "session",
                        "url": state.server.url,
                        "prefix": state.server.prefix,
                        "pinning": state.server.pinning,
                        "auth": state.server.auth.kind,
                        "protocol_version": state.catalog.protocol_version if state.catalog else None,
                        "tools": exposed,
                        "pending": sorted(state.pending),
                        "pending_hashes": dict(sorted(state.pending.items())),
                        "rejected": dict(sorted(state.rejected.items())),
                        "health": self._calls.breakers.summary((tenant, scope, name)),
                    }
                )
        return servers


class CatalogRefresher:
    """Refreshes a registry's record of an upstream when it says its lists changed: the same
    decisions as refresh_server (pinned changes held back), as a system command of its own,
    one at a time per server; agents on every replica then hear tools/list_changed from the
    registry watcher."""

    def __init__(self, registrar: UpstreamRegistrar) -> None:
        self._registrar = registrar
        self._running: dict[tuple[str, str | None, str], asyncio.Task[None]] = {}

    async def __call__(self, target: UpstreamTarget) -> None:
        key = (target.tenant, target.scope, target.server.name)
        if key in self._running and not self._running[key].done():
            return  # one refresh at a time; it reads the latest catalog anyway
        self._running[key] = asyncio.create_task(self._refresh(target), name=f"refresh:{target.server.name}")

    async def _refresh(self, target: UpstreamTarget) -> None:
        command = CallTool(
            tenant=target.tenant,
            subject=f"upstream:{target.server.name}",
            session_id=None,
            tool_name="refresh_server",
            arguments={"name": target.server.name},
        )
        try:
            await self._registrar.refresh(command, target.scope, target.server.name)
        except Exception as error:  # boundary: a failed refresh is logged; calls go on
            log.warning("refreshing upstream %s after list_changed failed: %r", target.server.name, error)

    async def close(self) -> None:
        for task in self._running.values():
            task.cancel()
        for task in self._running.values():
            with contextlib.suppress(BaseException):
                await task
