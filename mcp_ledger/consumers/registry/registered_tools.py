"""The worker's view of registered tools: spec and runner for a name in a (tenant, session).

`ToolSource` is the port the command handler asks for tools it does not have built in;
`RegisteredTools` answers from the tool catalog (registry projection) and runs bindings
with the HTTP and SQL runners; a SQL tool's DSN is opened from the event store per call.
Before an HTTP tool runs, an opted-out subject's call to a third party is refused (CCPA,
domain/privacy.py); SQL tools reach the subject's own data source and are not sharing.
"""

from __future__ import annotations

from typing import Protocol

from mcp_ledger.consumers.bindings.http_runner import HttpToolRunner
from mcp_ledger.consumers.bindings.pointer_inputs import PointerInputs
from mcp_ledger.consumers.bindings.sql_runner import SqlToolRunner
from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.registry.data_source_secrets import DataSourceSecrets
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome, ToolRunner
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.registry.bindings import HttpBinding, McpBinding
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.domain.upstreams.model import UpstreamServer
from mcp_ledger.projections.registry.catalog import CatalogEntry, ToolCatalog


class UpstreamRunner(Protocol):
    """Runs MCP-bound tools against their upstream servers (consumers/upstreams/calls.py)."""

    async def run(
        self, call: ToolInvocation, binding: McpBinding, server: UpstreamServer | None, scope: str | None
    ) -> ToolOutcome: ...

    async def close(self) -> None: ...


class ToolSource(Protocol):
    async def resolve(self, command: CallTool) -> tuple[ToolSpec, ToolRunner] | None:
        """The spec and runner of the command's tool in its scope, None when unknown there."""
        ...


class RegisteredTools:
    """Registered tools from the catalog, run by their bindings."""

    def __init__(
        self,
        catalog: ToolCatalog,
        http: HttpToolRunner,
        sql: SqlToolRunner,
        secrets: DataSourceSecrets,
        *,
        privacy: PrivacyChoices | None = None,
        pointers: PointerInputs | None = None,
        upstreams: UpstreamRunner | None = None,
    ) -> None:
        self._upstreams = upstreams
        self._privacy = privacy
        self._pointers = pointers
        self._catalog = catalog
        self._http = http
        self._sql = sql
        self._secrets = secrets

    async def resolve(self, command: CallTool) -> tuple[ToolSpec, ToolRunner] | None:
        entry = await self._catalog.find(command.tenant, command.session_id, command.tool_name)
        if entry is None:
            return None
        return entry.spec, self._runner(entry)

    def _runner(self, entry: CatalogEntry) -> ToolRunner:
        binding = entry.tool.definition.binding
        if isinstance(binding, McpBinding):
            return self._upstream_runner(entry, binding)
        pointer_arguments = entry.tool.definition.pipeability.pointer_arguments

        async def run(call: ToolInvocation) -> ToolOutcome:
            arguments = call.command.arguments
            if pointer_arguments:
                if self._pointers is None:
                    raise ToolExecutionError("tool_unavailable", "this worker cannot read pointers")
                arguments = await self._pointers.resolve(pointer_arguments, call.command)
            if isinstance(binding, HttpBinding):
                if self._privacy is not None:
                    recipient = entry.tool.definition.data_recipient
                    await self._privacy.check_sharing(call.command, recipient, f"tool:{entry.spec.name}")
                return await self._http.run(binding, arguments)
            command = call.command
            dsn = None
            if entry.data_source is not None:
                dsn = await self._secrets.dsn(command.tenant, command.session_id, binding.source)
            if dsn is None:
                raise ToolExecutionError(
                    "tool_unavailable", f"data source {binding.source!r} is not connected (or was erased)"
                )
            return await self._sql.run(binding, dsn, arguments)

        return run

    def _upstream_runner(self, entry: CatalogEntry, binding: McpBinding) -> ToolRunner:
        upstreams = self._upstreams
        server = entry.upstream.server if entry.upstream is not None else None

        async def run(call: ToolInvocation) -> ToolOutcome:
            if upstreams is None:
                raise ToolExecutionError("tool_unavailable", "this worker cannot reach upstream servers")
            return await upstreams.run(call, binding, server, entry.session_id)

        return run

    async def close(self) -> None:
        await self._http.close()
        await self._sql.close()
        if self._upstreams is not None:
            await self._upstreams.close()
