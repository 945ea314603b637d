"""The fixture upstream's parts for input_required rounds outside tools/call and for per-call
log routing: the prompt `ask_context` and the resource template `fixture://asked/{topic}`
answer a 2026-07-28 request with an InputRequiredResult under the key `user_context` until
the retry brings it; the tool `chatty` logs its label before and after every concurrent
`chatty` call has started (so their logs overlap) and reports progress meanwhile."""

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

    @server.resource("fixture://asked/{topic}", mime_type="text/plain")
    def asked(topic: str, ctx: Context) -> str | InputRequiredResult:
        """A resource that needs a context first."""
        calls["asked"] += 1
        context = _asked(ctx)
        return _round() if context is None else f"{topic} in the context {context}"


def add_chatty(server: MCPServer, calls: Counter[str]) -> None:
    """`chatty`: logs and progress of several calls in flight at once."""
    started = asyncio.Event()

    @server.tool()
    async def chatty(label: str, ctx: Context) -> str:
        """Log the label, wait for the other chatty calls, report progress, log it again."""
        calls["chatty"] += 1
        if calls["chatty"] % CHATTY_TOGETHER == 0:
            started.set()
        with warnings.catch_warnings():  # logging is deprecated in 2026-07-28; this server still logs
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await ctx.info(f"{label} before")
            await asyncio.wait_for(started.wait(), timeout=5)
            await ctx.report_progress(1, 2, f"{label} halfway")
            await asyncio.sleep(0.05)
            await ctx.info(f"{label} after")
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
