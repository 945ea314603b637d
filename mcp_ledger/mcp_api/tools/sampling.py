"""Asking the client's LLM for a plan through MCP sampling, with bounded re-asks.

On the 2026-07-28 protocol the tool call answers with an input_required result holding a
sampling/createMessage request under the key "ledger-plan-N"; the client runs its LLM and
retries the call with the answer, which is judged here and either accepted or re-asked as
round N+1 with the problems found. The round lives in the key, so no server state is kept
between rounds. Older protocols get the same request on the call's own stream when the
connection can carry one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.message import ServerMessageMetadata
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
    """
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
