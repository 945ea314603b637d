"""Runners of upstream_resource_read and upstream_prompt_get: resources/read and prompts/get
for an upstream's resources and prompts, run by a worker and recorded like tool calls.

The server is found again from the command's scope (projections/registry/upstream_routes),
the server's minimum role applies, and the request goes through the same held session,
breaker and timeout as tool calls. A 2026-07-28 agent's prompts/get and resources/read meet
the upstream statelessly and get its input_required rounds as tools/call does
(relay/rounds.py): asked of the agent whole, the upstream's requestState kept here. The
result is kept whole in structured content (the upstream's ReadResourceResult or
GetPromptResult, wire form) so the API answers with it.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp import Client

from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome, ToolRunner
from mcp_ledger.consumers.upstreams.calls import UpstreamCalls
from mcp_ledger.consumers.upstreams.relay.rounds import prompt_with_rounds, read_with_rounds
from mcp_ledger.domain.access import access_problem
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.upstream_routes import (
    Route,
    prompt_route,
    resource_route,
    template_route,
)


def _wire(result: Any) -> dict[str, Any]:
    wire: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return wire


class UpstreamReads:
    def __init__(self, catalog: ToolCatalog, calls: UpstreamCalls) -> None:
        self._catalog = catalog
        self._calls = calls

    def runners(self) -> dict[str, ToolRunner]:
        return {
            "upstream_resource_read": self.read_resource,
            "upstream_prompt_get": self.get_prompt,
            "upstream_complete": self.complete,
        }

    async def _route(self, call: ToolInvocation, route: Route | None, what: str) -> Route:
        if route is None:
            raise ToolExecutionError("unknown_resource", f"no upstream server here offers {what}")
        denied = access_problem(call.command.roles, route.upstream.server.minimum_role, ())
        if denied is not None:
            raise ToolExecutionError("forbidden", denied)
        return route

    async def read_resource(self, call: ToolInvocation) -> ToolOutcome:
        command = call.command
        uri = str(command.arguments["uri"])
        upstreams = await self._catalog.upstreams(command.tenant, command.session_id)
        route = await self._route(call, resource_route(upstreams, uri), f"the resource {uri!r}")
        server = route.upstream.server
        ask_round = self._calls.rounds(command, server.timeout_s)

        async def send(client: Client) -> Any:
            if ask_round is not None:
                return await read_with_rounds(client, uri, ask_round)
            return await client.read_resource(uri, cache_mode="bypass")

        result = await self._calls.request(
            command, server, route.scope, send, timeout_s=server.timeout_s, idempotent=True
        )
        return ToolOutcome([{"type": "text", "text": f"resource {uri} of {server.name}"}], _wire(result))

    async def get_prompt(self, call: ToolInvocation) -> ToolOutcome:
        command = call.command
        exposed = str(command.arguments["name"])
        upstreams = await self._catalog.upstreams(command.tenant, command.session_id)
        route = await self._route(call, prompt_route(upstreams, exposed), f"the prompt {exposed!r}")
        server = route.upstream.server
        arguments = {str(k): str(v) for k, v in dict(command.arguments.get("arguments") or {}).items()}
        ask_round = self._calls.rounds(command, server.timeout_s)

        async def send(client: Client) -> Any:
            if ask_round is not None:
                return await prompt_with_rounds(client, route.name, arguments, ask_round)
            return await client.get_prompt(route.name, arguments)

        result = await self._calls.request(
            command, server, route.scope, send, timeout_s=server.timeout_s, idempotent=True
        )
        return ToolOutcome([{"type": "text", "text": f"prompt {exposed} of {server.name}"}], _wire(result))

    async def complete(self, call: ToolInvocation) -> ToolOutcome:
        command = call.command
        ref = dict(command.arguments["ref"])
        upstreams = await self._catalog.upstreams(command.tenant, command.session_id)
        if ref.get("type") == "ref/prompt":
            found = prompt_route(upstreams, str(ref.get("name")))
            upstream_ref: Any = types.PromptReference(type="ref/prompt", name=found.name if found else "")
        else:
            found = template_route(upstreams, str(ref.get("uri")))
            upstream_ref = types.ResourceTemplateReference(type="ref/resource", uri=str(ref.get("uri")))
        route = await self._route(call, found, f"the reference {ref!r}")
        argument = {str(k): str(v) for k, v in dict(command.arguments["argument"]).items()}
        context = dict(command.arguments.get("context") or {}).get("arguments")

        async def send(client: Client) -> Any:
            return await client.complete(upstream_ref, argument, context)

        server = route.upstream.server
        result = await self._calls.request(
            command, server, route.scope, send, timeout_s=server.timeout_s, idempotent=True
        )
        return ToolOutcome([{"type": "text", "text": f"completion from {server.name}"}], _wire(result))
