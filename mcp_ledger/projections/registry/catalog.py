"""The tool catalog: which tools a (tenant, session) sees, built-in and registered.

Answers tools/list for the API and "which tool is this name here" for the API and the
worker, from the built-in specs and the registry views. Precedence is built-in, then the
session's own tools, then the tenant's; registration refuses names that would be shadowed,
and a registered tool under a name the gateway reserves (domain/catalog.py; stored before
the name was reserved) is never served.
Ownership of the session is the caller's concern (the API and the worker check it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mcp_ledger.domain.catalog import RESERVED_TOOL_NAMES
from mcp_ledger.domain.registry.bindings import McpBinding, SqlBinding
from mcp_ledger.domain.registry.model import RegisteredTool
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.registry.view import DataSourceView, RegistryView, UpstreamView


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A registered tool found in a scope, with the data source a SQL binding names."""

    spec: ToolSpec
    tool: RegisteredTool
    session_id: str | None
    data_source: DataSourceView | None = None
    upstream: UpstreamView | None = None
    """For an MCP binding: its server's entry in the same registry."""


class ToolCatalog:
    """Built-in specs plus the registry views of a tenant and a session."""

    def __init__(self, builtins: Mapping[str, ToolSpec], views: RegistryViewStore) -> None:
        self._builtins = builtins
        self._views = views

    async def _scopes(self, tenant: str, session_id: str | None) -> tuple[RegistryView | None, ...]:
        if session_id is None:
            return (None, await self._views.get(tenant, None))
        return tuple(await asyncio.gather(self._views.get(tenant, session_id), self._views.get(tenant, None)))

    async def versions(self, tenant: str, session_id: str | None) -> tuple[int, int]:
        """The versions of the scope's two registries (the session's, 0 without one; the
        tenant's): every registration, update, removal and approval changes one of them."""
        if session_id is None:
            return (0, await self._views.version(tenant, None))
        own, tenant_wide = await asyncio.gather(
            self._views.version(tenant, session_id), self._views.version(tenant, None)
        )
        return (own, tenant_wide)

    async def visible(self, tenant: str, session_id: str | None) -> list[ToolSpec]:
        """Every tool this scope sees, built-ins first, each name once."""
        specs = dict(self._builtins)
        for view in await self._scopes(tenant, session_id):
            for name, tool in (view.tools if view else {}).items():
                if name not in RESERVED_TOOL_NAMES:
                    specs.setdefault(name, tool.definition.spec())
        return list(specs.values())

    async def find(self, tenant: str, session_id: str | None, name: str) -> CatalogEntry | None:
        """The registered tool of that name in this scope, None for unknown and built-in names."""
        if name in self._builtins or name in RESERVED_TOOL_NAMES:
            return None
        for view in await self._scopes(tenant, session_id):
            if view is None or name not in view.tools:
                continue
            tool = view.tools[name]
            binding = tool.definition.binding
            source = view.data_sources.get(binding.source) if isinstance(binding, SqlBinding) else None
            upstream = view.upstreams.get(binding.server) if isinstance(binding, McpBinding) else None
            return CatalogEntry(tool.definition.spec(), tool, view.session_id, source, upstream)
        return None

    async def registered_specs(
        self, tenant: str, session_id: str | None, names: Iterable[str]
    ) -> dict[str, ToolSpec]:
        """The registered and upstream tools of these names in this scope (what a plan may
        name besides the built-ins); built-in and unknown names are left out."""
        found: dict[str, ToolSpec] = {}
        for name in sorted(set(names)):
            entry = await self.find(tenant, session_id, name)
            if entry is not None:
                found[name] = entry.spec
        return found

    async def upstreams(self, tenant: str, session_id: str | None) -> list[tuple[str | None, UpstreamView]]:
        """The upstream servers this scope sees, each with its registry's session (None:
        tenant-wide), the session's first."""
        return [
            (view.session_id, upstream)
            for view in await self._scopes(tenant, session_id)
            if view is not None
            for upstream in view.upstreams.values()
        ]

    async def names(self, tenant: str, session_id: str | None) -> frozenset[str]:
        """Names taken in this scope (built-ins and registered)."""
        return frozenset(spec.name for spec in await self.visible(tenant, session_id))

    async def wait_for(self, tenant: str, session_id: str | None, version: int, within: float) -> bool:
        """Whether the scope's view reaches `version` within `within` seconds (bounded poll)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    view = await self._views.get(tenant, session_id)
                    if view is not None and view.version >= version:
                        return True
                    await asyncio.sleep(0.005)
        except TimeoutError:
            return False
