"""input_required rounds for 2026-07-28 agents: an upstream's requests as the call's result.

A 2026-07-28 agent may not be sent requests; when its call's upstream needs input, the
worker keeps the upstream call waiting and publishes the whole round (method
"input_required", consumers/upstreams/relay/rounds.py). The replica holding the agent's
tools/call (or prompts/get, resources/read of an upstream: mcp_api/upstreams.py) answers it
with an InputRequiredResult: the round's inputRequests under the
upstream's own keys and a requestState naming the running command and the worker's request
id (sealed by the SDK's RequestStateBoundary the gateway installs: AES-GCM, bound to the
caller's tenant and token subject, the method and an expiry). The agent's retry, on any
replica, carries its inputResponses to the waiting worker on the reply topic (headed by the
authenticated tenant and subject, which the worker checks again) and waits for the same
command's outcome or its next round. Only a call whose upstream returned input_required
ever sees a round; every other call's result is the command's terminal event as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import TypeAdapter

from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.upstreams.events import INPUT_ROUND
from mcp_ledger.mcp_api.backchannel.stream import NoStreamError

_REQUESTS: TypeAdapter[types.InputRequests] = TypeAdapter(types.InputRequests)
STATE_KIND = "ledger-upstream-round/v1"


@dataclass(frozen=True, slots=True)
class RoundState:
    """What a retry names: the waiting command, its session, the tool and the worker's request."""

    command_id: str
    session_id: str | None
    tool: str
    request_id: str


class RoundCatcher:
    """Takes the first input_required round published for one request's command."""

    def __init__(self) -> None:
        self.round: asyncio.Future[tuple[str, dict[str, Any]]] = asyncio.get_running_loop().create_future()

    async def __call__(self, request_id: str, method: str, params: Any) -> None:
        """The progress hub's `ask`: a round is taken; any single request is refused (a
        2026-07-28 agent may not be sent one)."""
        if method != INPUT_ROUND:
            raise NoStreamError(f"a 2026-07-28 agent may not be sent {method!r}")
        requests = params.get("inputRequests") if isinstance(params, dict) else None
        if not isinstance(requests, dict) or not requests:
            raise NoStreamError("an input_required round without input requests")
        if not self.round.done():
            self.round.set_result((request_id, requests))


def state_of(command: CallTool, request_id: str) -> str:
    """The plain requestState of a round (the boundary seals it on the way out)."""
    return json.dumps(
        {
            "kind": STATE_KIND,
            "command": command.command_id,
            "session": command.session_id,
            "tool": command.tool_name,
            "request": request_id,
        },
        separators=(",", ":"),
    )


def parse_state(text: str) -> RoundState | None:
    """A round's requestState as the boundary opened it; None for any other state."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("kind") != STATE_KIND:
        return None
    fields = (data.get("command"), data.get("tool"), data.get("request"))
    session = data.get("session")
    if not all(isinstance(value, str) and value for value in fields):
        return None
    if session is not None and not isinstance(session, str):
        return None
    return RoundState(str(fields[0]), session, str(fields[1]), str(fields[2]))


def round_state_for(text: str | None, tool: str) -> RoundState | None:
    """The round a retry's requestState (as the boundary opened it) names, for a command of
    `tool`; None for a request that continues no round.

    Raises:
        MCPError: the state names a round of another kind of command.
    """
    state = None if text is None else parse_state(text)
    if state is not None and state.tool != tool:
        raise MCPError(types.INVALID_PARAMS, "requestState does not name a request waiting for input")
    return state


def wire_responses(responses: types.InputResponses | None) -> dict[str, Any]:
    """The agent's inputResponses in wire form, under the keys the upstream chose."""
    return {
        key: value.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in (responses or {}).items()
    }


async def outcome_or_round(
    outcome: Awaitable[dict[str, object]], catcher: RoundCatcher | None, command: CallTool
) -> dict[str, object] | types.InputRequiredResult:
    """The command's terminal event, or its upstream's next round as an InputRequiredResult
    (then the command goes on waiting on the worker for the agent's retry).

    Raises:
        CommandTimeoutError, BusError, KeyStoreError: as the gateway raises them.
    """
    if catcher is None:
        return await outcome
    waiting = asyncio.ensure_future(outcome)
    try:
        pending: set[asyncio.Future[Any]] = {waiting, catcher.round}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiting.done():
            waiting.cancel()
    if waiting.done() and not waiting.cancelled():
        return waiting.result()
    request_id, requests = catcher.round.result()
    try:
        input_requests = _REQUESTS.validate_python(requests)
    except ValueError as error:
        raise MCPError(types.INTERNAL_ERROR, f"the upstream's input requests are invalid: {error}") from None
    return types.InputRequiredResult(
        input_requests=input_requests, request_state=state_of(command, request_id)
    )
