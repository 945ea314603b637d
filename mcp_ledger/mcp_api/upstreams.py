"""Upstream resources, resource templates and prompts at the MCP edge.

Lists what the caller's scope sees (tenant-wide, and their own session's) beside the
gateway's own, and turns resources/read and prompts/get for an upstream's URI or prompt into
the upstream_resource_read / upstream_prompt_get commands, so they are recorded like calls.
None means "not an upstream's": the server answers it itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.upstream_routes import (
    Scoped,
    prompt_route,
    resource_route,
    template_route,
)


def selection(patterns: list[str] | None) -> Callable[[str], bool]:
    """Whether a registered or upstream tool name is listed under a session's selection."""
    if not patterns:
        return lambda name: True
    return lambda name: any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _visible(identity: Identity, upstreams: list[Scoped]) -> list[Scoped]:
    return [
        (scope, upstream)
        for scope, upstream in upstreams
        if access_problem(identity.roles, upstream.server.minimum_role, ()) is None
    ]


class UpstreamSurface:
    """Upstream resources and prompts for one gateway."""

    def __init__(self, catalog: ToolCatalog, gateway: CommandGateway) -> None:
        self._catalog = catalog
        self._gateway = gateway

    async def _upstreams(self, identity: Identity, session_id: str | None) -> list[Scoped]:
        return _visible(identity, await self._catalog.upstreams(identity.tenant, session_id))

    async def resources(self, identity: Identity, session_id: str | None) -> list[types.Resource]:
        found = await self._upstreams(identity, session_id)
        return [types.Resource.model_validate(r) for _, upstream in found for r in upstream.resources]

    async def templates(self, identity: Identity, session_id: str | None) -> list[types.ResourceTemplate]:
        found = await self._upstreams(identity, session_id)
        return [
            types.ResourceTemplate.model_validate(t)
            for _, upstream in found
            for t in upstream.resource_templates
        ]

    async def prompts(self, identity: Identity, session_id: str | None) -> list[types.Prompt]:
        found = await self._upstreams(identity, session_id)
        return [
            types.Prompt.model_validate({**p, "name": upstream.server.exposed_name(str(p.get("name", "")))})
            for _, upstream in found
            for p in upstream.prompts
        ]

    async def read(
        self, identity: Identity, session_id: str | None, uri: str
    ) -> types.ReadResourceResult | None:
        """Raises:
        MCPError: the upstream read failed (recorded)."""
        if resource_route(await self._upstreams(identity, session_id), uri) is None:
            return None
        data = await self._send(identity, session_id, "upstream_resource_read", {"uri": uri})
        return types.ReadResourceResult.model_validate(data)

    async def subscription(self, identity: Identity, session_id: str | None, uri: str, *, on: bool) -> bool:
        """Forward resources/subscribe (or unsubscribe, `on` False) for an upstream's URI as a
        recorded command of the session; False when no upstream here offers the URI.

        Raises:
            MCPError: the upstream refused it (recorded).
        """
        if resource_route(await self._upstreams(identity, session_id), uri) is None:
            return False
        tool = "upstream_resource_subscribe" if on else "upstream_resource_unsubscribe"
        await self._send(identity, session_id, tool, {"uri": uri})
        return True

    async def get_prompt(
        self, identity: Identity, session_id: str | None, name: str, arguments: dict[str, str]
    ) -> types.GetPromptResult | None:
        """Raises:
        MCPError: the upstream prompt failed (recorded)."""
        if prompt_route(await self._upstreams(identity, session_id), name) is None:
            return None
        data = await self._send(
            identity, session_id, "upstream_prompt_get", {"name": name, "arguments": arguments}
        )
        return types.GetPromptResult.model_validate(data)

    async def complete(
        self, identity: Identity, session_id: str | None, params: types.CompleteRequestParams
    ) -> types.CompleteResult | None:
        """Raises:
        MCPError: the upstream completion failed (recorded)."""
        upstreams = await self._upstreams(identity, session_id)
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            found = prompt_route(upstreams, ref.name)
        else:
            found = template_route(upstreams, ref.uri)
        if found is None:
            return None
        arguments = {
            "ref": ref.model_dump(mode="json", by_alias=True, exclude_none=True),
            "argument": params.argument.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        if params.context is not None:
            arguments["context"] = params.context.model_dump(mode="json", by_alias=True, exclude_none=True)
        data = await self._send(identity, session_id, "upstream_complete", arguments)
        return types.CompleteResult.model_validate(data)

    async def _send(
        self, identity: Identity, session_id: str | None, tool: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=session_id,
            tool_name=tool,
            arguments=arguments,
        )
        try:
            event = await self._gateway.call(command)
        except CommandTimeoutError as error:
            raise MCPError(types.INTERNAL_ERROR, str(error)) from error
        data = event["data"]
        assert isinstance(data, dict)
        if event["event_type"] != "ToolSucceeded":
            message = data.get("message") or data.get("reason") or "refused"
            raise MCPError(types.INVALID_PARAMS, f"{data.get('error_code', 'forbidden')}: {message}")
        structured = data.get("structured")
        assert isinstance(structured, dict)
        return structured
