"""Asking the client's LLM for a plan through MCP sampling, with bounded re-asks.

On the 2026-07-28 protocol the tool call answers with an input_required result holding a
sampling/createMessage request under the key "ledger-plan-N"; the client runs its LLM and
retries the call with the answer, which is judged here and either accepted or re-asked as
round N+1 with the problems found. The round lives in the key, so no server state is kept
between rounds. Older protocols get the same request on the call's own stream when the
connection can carry one. A client that did not declare the sampling capability is never asked:
on 2026-07-28 the call is refused with -32021 MissingRequiredClientCapability (HTTP 400, the
missing capability in `requiredCapabilities`), on older protocols it is a planner error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.jsonrpc import MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.tools.planners import (
    MAX_REASKS,
    PlannerError,
    ask_again,
    judge,
    latest_answer,
    sampled_text,
    sampling_request,
    too_many,
)

SAMPLING = types.ClientCapabilities(sampling=types.SamplingCapability())


def require_sampling(ctx: ServerRequestContext[Any]) -> None:
    """Refuse a call that would need sampling from a client that did not declare it.

    Raises:
        MCPError: -32021 on the 2026-07-28 protocol.
        PlannerError: on older protocols, which have no such error.
    """
    if ctx.session.check_client_capability(SAMPLING):
        return
    message = "planning by sampling needs a client that declares the sampling capability"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        data = types.MissingRequiredClientCapabilityErrorData(required_capabilities=SAMPLING)
        wire = data.model_dump(by_alias=True, exclude_none=True)
        raise MCPError(MISSING_REQUIRED_CLIENT_CAPABILITY, message, data=wire)
    raise PlannerError(message)


async def sample_plan(
    ctx: ServerRequestContext[Any],
    params: types.CallToolRequestParams,
    goal: str,
    tools: list[ToolSpec],
    problems_of: Callable[[dict[str, Any]], list[str]],
) -> dict[str, Any] | types.InputRequiredResult:
    """A raw plan that passes `problems_of`, or the input_required result asking for one.

    Raises:
        PlannerError: the last allowed answer was refused, or sampling cannot reach the client.
        MCPError: -32021, the client did not declare sampling (2026-07-28).
    """
    require_sampling(ctx)
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        latest = latest_answer(params.input_responses)
        if latest is None:
            return ask_again(goal, tools, 1, [])
        round_, answer = latest
        raw, refused = judge(sampled_text(answer), problems_of)
        if raw is not None:
            return raw
        if round_ > MAX_REASKS:
            raise too_many(refused)
        return ask_again(goal, tools, round_ + 1, refused)
    if not ctx.session.can_send_request:
        raise PlannerError("sampling needs the 2026-07-28 protocol or a connection that can carry requests")
    problems: list[str] = []
    for _ in range(1 + MAX_REASKS):
        metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
        answer = await ctx.session.send_request(
            sampling_request(goal, tools, problems), types.CreateMessageResult, metadata=metadata
        )
        raw, problems = judge(sampled_text(answer), problems_of)
        if raw is not None:
            return raw
    raise too_many(problems)
