"""Upstream resources, resource templates and prompts at the MCP edge.

Lists what the caller's scope sees (tenant-wide, and their own session's) beside the
gateway's own, and turns resources/read and prompts/get for an upstream's URI or prompt into
the upstream_resource_read / upstream_prompt_get commands, so they are recorded like calls.
None means "not an upstream's": the server answers it itself. For a 2026-07-28 agent those
two get the upstream's input_required rounds as tools/call does (backchannel/rounds.py): the
answer may be an InputRequiredResult whose sealed requestState names the waiting command,
and the agent's retry with it (on any replica) carries its inputResponses to that command.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.backchannel.capabilities import agent_capabilities
from mcp_ledger.mcp_api.backchannel.rounds import (
    RoundCatcher,
    RoundState,
    outcome_or_round,
    round_state_for,
    wire_responses,
)
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.progress import ProgressHub, relaying
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.upstream_routes import (
    Scoped,
    prompt_route,
    resource_route,
    template_route,
)

T = TypeVar("T")


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

    def __init__(self, catalog: ToolCatalog, gateway: CommandGateway, hub: ProgressHub | None = None) -> None:
        self._catalog = catalog
        self._gateway = gateway
        self._hub = hub

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
        self,
        identity: Identity,
        session_id: str | None,
        params: types.ReadResourceRequestParams,
        request: ServerRequestContext[Any] | None = None,
    ) -> types.ReadResourceResult | types.InputRequiredResult | None:
        """The upstream's resource, or its next input round for a 2026-07-28 `request`.

        Raises:
            MCPError: the upstream read failed (recorded), or a round's state names another request.
        """
        tool, uri = "upstream_resource_read", str(params.uri)
        state = round_state_for(params.request_state, tool)
        session_id = session_id if state is None else state.session_id
        if resource_route(await self._upstreams(identity, session_id), uri) is None:
            return None
        data = await self._rounds(
            identity, session_id, tool, {"uri": uri}, request, state, params.input_responses
        )
        if isinstance(data, types.InputRequiredResult):
            return data
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
        self,
        identity: Identity,
        session_id: str | None,
        params: types.GetPromptRequestParams,
        request: ServerRequestContext[Any] | None = None,
    ) -> types.GetPromptResult | types.InputRequiredResult | None:
        """The upstream's prompt, or its next input round for a 2026-07-28 `request`.

        Raises:
            MCPError: the upstream prompt failed (recorded), or a round's state names another request.
        """
        tool, name, arguments = "upstream_prompt_get", params.name, dict(params.arguments or {})
        state = round_state_for(params.request_state, tool)
        session_id = session_id if state is None else state.session_id
        if prompt_route(await self._upstreams(identity, session_id), name) is None:
            return None
        arguments_of = {"name": name, "arguments": arguments}
        data = await self._rounds(
            identity, session_id, tool, arguments_of, request, state, params.input_responses
        )
        if isinstance(data, types.InputRequiredResult):
            return data
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

    async def _rounds(
        self,
        identity: Identity,
        session_id: str | None,
        tool: str,
        arguments: dict[str, Any],
        request: ServerRequestContext[Any] | None,
        state: RoundState | None,
        responses: types.InputResponses | None,
    ) -> dict[str, Any] | types.InputRequiredResult:
        """The command's structured result, or (for a 2026-07-28 agent) its upstream's next
        round; with a round's `state`, the retry of that waiting command with `responses`.

        Raises:
            MCPError: the command failed (recorded), timed out, or `state` cannot be resumed here.
        """
        capabilities = None if request is None else agent_capabilities(request)
        hub = self._hub
        if request is None or hub is None or capabilities is None:
            if state is not None:
                raise MCPError(types.INVALID_PARAMS, "requestState does not name a request waiting for input")
            return await self._send(identity, session_id, tool, arguments)
        command = _command(identity, session_id, tool, arguments, capabilities, state)
        outcome: Awaitable[dict[str, object]]
        if state is None:
            outcome = self._gateway.call(command)
        else:
            answers, request_id = wire_responses(responses), state.request_id

            async def answer() -> None:
                await hub.answer(identity.tenant, identity.subject, request_id, answers)

            outcome = self._gateway.outcome(command, first=answer)
        catcher = RoundCatcher()
        with relaying(hub, request, command, catcher):
            answered = await _settled(outcome_or_round(outcome, catcher, command))
        if isinstance(answered, types.InputRequiredResult):
            return answered
        return _structured(answered)

    async def _send(
        self, identity: Identity, session_id: str | None, tool: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        command = _command(identity, session_id, tool, arguments, None, None)
        return _structured(await _settled(self._gateway.call(command)))


def _command(
    identity: Identity,
    session_id: str | None,
    tool: str,
    arguments: dict[str, Any],
    capabilities: tuple[str, ...] | None,
    state: RoundState | None,
) -> CallTool:
    """The command of an upstream request; a retry's is the waiting command (same id)."""
    command = CallTool(
        tenant=identity.tenant,
        subject=identity.subject,
        roles=identity.roles,
        session_id=session_id,
        tool_name=tool,
        arguments=arguments,
        client_capabilities=capabilities,
    )
    return command if state is None else command.model_copy(update={"command_id": state.command_id})


async def _settled(outcome: Awaitable[T]) -> T:
    try:
        return await outcome
    except CommandTimeoutError as error:
        raise MCPError(types.INTERNAL_ERROR, str(error)) from error


def _structured(event: dict[str, object]) -> dict[str, Any]:
    """The structured result of a terminal event.

    Raises:
        MCPError: the command failed or was refused (recorded).
    """
    data = event["data"]
    assert isinstance(data, dict)
    if event["event_type"] != "ToolSucceeded":
        message = data.get("message") or data.get("reason") or "refused"
        raise MCPError(types.INVALID_PARAMS, f"{data.get('error_code', 'forbidden')}: {message}")
    structured = data.get("structured")
    assert isinstance(structured, dict)
    return structured
