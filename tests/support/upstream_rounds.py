"""The fixture upstream's parts for input_required rounds outside tools/call and for per-call
log routing: the prompt `ask_context`, the resource template `fixture://asked/{topic}` and
the tool `late_ask` (after a delay) answer a 2026-07-28 request with an InputRequiredResult
under the key `user_context` until the retry brings it; the tool `chatty` logs its label
before and after the other call of its pair has started (so their logs overlap) and reports
progress meanwhile."""

from __future__ import annotations

import asyncio
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult, TextContent

from tests.support.upstream import RunningUpstream, UpstreamState, _serve, build_server

CHATTY_TOGETHER = 2
"""How many `chatty` calls meet before any of them logs its second line."""
CHATTY_WAIT_S = 2.0
_SCHEMA = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}


def _asked(ctx: Context) -> str | None:
    """The context the retry answered with, or None on the first request."""
    answer = (ctx.input_responses or {}).get("user_context")
    if isinstance(answer, ElicitResult) and answer.content:
        return str(answer.content.get("context"))
    return None


def _round() -> InputRequiredResult:
    asked = ElicitRequest(params=ElicitRequestFormParams(message="Which context?", requested_schema=_SCHEMA))
    return InputRequiredResult(input_requests={"user_context": asked})


def add_rounds(server: MCPServer, calls: Counter[str]) -> None:
    """The prompt and resource template that ask for input in an input_required round."""

    @server.prompt()
    def ask_context(ctx: Context) -> list[UserMessage] | InputRequiredResult:
        """Ask which context to use, then use it."""
        calls["ask_context"] += 1
        context = _asked(ctx)
        if context is None:
            return _round()
        return [UserMessage(content=TextContent(type="text", text=f"use the context {context}"))]

    @server.tool()
    async def late_ask(delay: float, ctx: Context) -> str | InputRequiredResult:
        """Work for `delay` seconds, then ask for a context (an input_required round)."""
        calls["late_ask"] += 1
        context = _asked(ctx)
        if context is None:
            await asyncio.sleep(delay)
            return _round()
        return f"worked in the context {context}"

    @server.resource("fixture://asked/{topic}", mime_type="text/plain")
    def asked(topic: str, ctx: Context) -> str | InputRequiredResult:
        """A resource that needs a context first."""
        calls["asked"] += 1
        context = _asked(ctx)
        return _round() if context is None else f"{topic} in the context {context}"


async def _info(ctx: Context, text: str) -> None:
    """Log at info on the request's stream (as ctx.info does). Logging is deprecated in
    2026-07-28 and this server still logs; the warning is raised when the call is made, so only
    that is inside catch_warnings, which is not safe across awaits of concurrent calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        logged = ctx.request_context.session.send_log_message(
            level="info", data=text, logger=None, related_request_id=ctx.request_id
        )
    await logged


def add_chatty(server: MCPServer, calls: Counter[str]) -> None:
    """`chatty`: logs and progress of two calls in flight at once. Calls meet in pairs (the
    first and second call, the third and fourth, ...); one whose partner does not come within
    CHATTY_WAIT_S goes on alone and counts under "chatty_alone" (the bus ran them in turn)."""
    met: dict[int, asyncio.Event] = {}

    @server.tool()
    async def chatty(label: str, ctx: Context) -> str:
        """Log the label, wait for the other call of its pair, report progress, log it again."""
        calls["chatty"] += 1
        pair = met.setdefault((calls["chatty"] - 1) // CHATTY_TOGETHER, asyncio.Event())
        if calls["chatty"] % CHATTY_TOGETHER == 0:
            pair.set()
        await _info(ctx, f"{label} before")
        try:
            await asyncio.wait_for(pair.wait(), timeout=CHATTY_WAIT_S)
        except TimeoutError:
            calls["chatty_alone"] += 1
        await ctx.report_progress(1, 2, f"{label} halfway")
        await asyncio.sleep(0.05)
        await _info(ctx, f"{label} after")
        return label


@asynccontextmanager
async def rounds_upstream(*, legacy: bool) -> AsyncIterator[RunningUpstream]:
    """The fixture upstream (tests/support/upstream.py) with these parts, until the block ends."""
    state = UpstreamState(legacy=legacy)
    server = build_server(state)
    add_rounds(server, state.calls)
    add_chatty(server, state.calls)
    running = RunningUpstream(url="", port=0, state=state, server=server)
    await _serve(running)
    try:
        yield running
    finally:
        state.release.set()
        await running.stop()
