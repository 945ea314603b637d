"""A 2026-07-28 agent's upstream request with input_required rounds, driven by the worker.

When the upstream answers a 2026-07-28 agent's tools/call, prompts/get or resources/read
with an InputRequiredResult (SEP-2322 lets all three carry rounds), the
worker keeps the call open and asks the agent for that round's inputs, all of them at once
under the upstream's own keys (the SDK client's automatic driver answers them one callback
at a time and the keys never reach the agent). The agent's inputResponses come back over
the back channel (relay/backchannel.py, method "input_required"), and the worker retries
the upstream with them and the upstream's own requestState, which never leaves the worker.
Only a call whose upstream returned input_required takes this path; any other result is
returned as the first request got it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
from mcp import Client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types import HEADER_MISMATCH
from pydantic import TypeAdapter

MAX_ROUNDS = 10
"""The SDK client's own cap on input_required rounds."""
STATE_ONLY_DELAY_S = 0.05
"""How long to wait before retrying a round that carries only the upstream's requestState."""

R = TypeVar("R")

AskRound = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""One round's inputRequests (wire form, the upstream's keys) to the agent's inputResponses."""

Retry = Callable[[types.InputResponses | None, str | None], Awaitable[R | types.InputRequiredResult]]
"""Sends the request again with one round's inputResponses and the upstream's requestState."""

_RESPONSES: TypeAdapter[types.InputResponses] = TypeAdapter(types.InputResponses)


def wire_requests(result: types.InputRequiredResult) -> dict[str, Any]:
    """The round's input requests as the agent will see them, keyed as the upstream keyed them."""
    return {
        key: request.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, request in (result.input_requests or {}).items()
    }


async def call_with_rounds(
    client: Client,
    tool: str,
    arguments: dict[str, Any],
    *,
    timeout_s: float,
    progress: ProgressFnT | None,
    ask_round: AskRound,
    first_responses: dict[str, Any] | None = None,
) -> types.CallToolResult:
    """The upstream's final result, each of its input rounds answered by `ask_round`;
    `first_responses` (the agent's own, wire form) go with the first request.

    Raises:
        MCPError: the upstream refused a round, or asked for more than MAX_ROUNDS.
    """

    async def send(
        responses: types.InputResponses | None, state: str | None
    ) -> types.CallToolResult | types.InputRequiredResult:
        result = await client.session.call_tool(
            tool,
            arguments,
            read_timeout_seconds=timeout_s,
            progress_callback=progress,
            input_responses=responses,
            request_state=state,
            allow_input_required=True,
        )
        return result

    try:
        current = await send(_RESPONSES.validate_python(first_responses) if first_responses else None, None)
    except MCPError as error:
        if error.code != HEADER_MISMATCH:
            raise
        # The SDK client's own recovery (re-list, resend once); its rounds go by callbacks.
        return await client.call_tool(
            tool, arguments, read_timeout_seconds=timeout_s, progress_callback=progress
        )
    return await drive_rounds(current, send, ask_round, tool)


async def drive_rounds(
    current: R | types.InputRequiredResult, retry: Retry[R], ask_round: AskRound, what: str
) -> R:
    """The upstream's final result: while it answers input_required, each round is asked of
    the agent by `ask_round` and the request sent again with the answers.

    Raises:
        MCPError: the upstream refused a round, or asked for more than MAX_ROUNDS.
    """
    rounds = 0
    while isinstance(current, types.InputRequiredResult):
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise MCPError(types.INTERNAL_ERROR, f"{what} asked for input more than {MAX_ROUNDS} times")
        responses: types.InputResponses | None = None
        if current.input_requests:
            answered = await ask_round(wire_requests(current))
            responses = _RESPONSES.validate_python(answered)
        else:
            await asyncio.sleep(STATE_ONLY_DELAY_S)
        current = await retry(responses, current.request_state)
    return current


async def prompt_with_rounds(
    client: Client, name: str, arguments: dict[str, str], ask_round: AskRound
) -> types.GetPromptResult:
    """The upstream's prompt, each of its input rounds answered by `ask_round`.

    Raises:
        MCPError: the upstream refused, or asked for more than MAX_ROUNDS.
    """

    async def send(
        responses: types.InputResponses | None, state: str | None
    ) -> types.GetPromptResult | types.InputRequiredResult:
        return await client.session.get_prompt(
            name, arguments, input_responses=responses, request_state=state, allow_input_required=True
        )

    return await drive_rounds(await send(None, None), send, ask_round, f"the prompt {name}")


async def read_with_rounds(client: Client, uri: str, ask_round: AskRound) -> types.ReadResourceResult:
    """The upstream's resource, each of its input rounds answered by `ask_round`.

    Raises:
        MCPError: the upstream refused, or asked for more than MAX_ROUNDS.
    """

    async def send(
        responses: types.InputResponses | None, state: str | None
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        return await client.session.read_resource(
            uri, input_responses=responses, request_state=state, allow_input_required=True
        )

    return await drive_rounds(await send(None, None), send, ask_round, f"the resource {uri}")
