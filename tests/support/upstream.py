"""A real upstream MCP server for federation tests, built on the SDK's MCPServer and served
over Streamable HTTP by uvicorn on a free loopback port (in the test's event loop).

Tools: `echo`; `slow` (reports progress, then answers); `picture` (an image and a text
block); `fails` (an isError result); `headers` (which auth header reached it, never the
agent's token); `whoami` (the user its bearer was issued for, with `bearers` set);
`mutable`, whose description a test changes at runtime (the pinning "rug pull");
`ask_model`, `ask_user` and `ask_roots`, which ask their client for sampling, elicitation and
roots during the call (the back channel), `ask_name`, which asks for a name in an
input_required round under its own key `user_name` (2026-07-28), and `needs_sampling`
(-32021 for a client that did not declare sampling). Its resource `fixture://readme` can be subscribed to
(resources/subscribe, 2025-11-25), and `announce` makes it send
notifications/resources/updated to the sessions subscribed to a URI. With `bearers` set it
refuses (401) every request without one of those bearer tokens, as a resource server behind
token exchange does; it records every Authorization header it got, on every request. It
counts calls per tool and the MCP sessions it has seen, and can be restarted on the same port
(its sessions forgotten: the gateway's next call gets a 404).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    Completion,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    ImageContent,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel

from tests.support.loopback import QuietServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@dataclass
class UpstreamState:
    calls: Counter[str] = field(default_factory=Counter)
    sessions: set[str] = field(default_factory=set)
    auth_seen: list[str | None] = field(default_factory=list)
    mutable_description: str = "Answer with the word given."
    echo_name: str = "echo"
    """`echo` clashes with the gateway's built-in: a test of an unprefixed server renames it."""
    legacy: bool = True
    """2025-11-25 only (sessions); False also speaks 2026-07-28 (stateless)."""
    deleted: list[str] = field(default_factory=list)
    """Session ids the gateway closed (DELETE /mcp)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    bearers: dict[str, str] | None = None
    """Accepted bearer token -> its user; None: no bearer needed."""
    authorizations: list[str] = field(default_factory=list)
    """Every Authorization header value received, on any request ("" for none)."""
    subscribers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """URI -> Mcp-Session-Id -> that MCP session, for those subscribed to it (resources/subscribe)."""


def _session_of(ctx: Context) -> str | None:
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return None if headers is None else headers.get("mcp-session-id")


def build_server(state: UpstreamState) -> MCPServer:
    """The fixture server; `mutable` is re-added whenever its description changes."""
    server = MCPServer("fixture-upstream")

    def seen(ctx: Context, tool: str) -> None:
        state.calls[tool] += 1
        session = _session_of(ctx)
        if session is not None:
            state.sessions.add(session)

    @server.tool(
        name=state.echo_name, annotations=ToolAnnotations(read_only_hint=True), meta={"fixture": "echo"}
    )
    def echo(text: str, ctx: Context) -> str:
        """Return the text unchanged."""
        seen(ctx, "echo")
        return text

    @server.tool()
    async def slow(steps: int, ctx: Context, wait_for_release: bool = False) -> str:
        """Report progress `steps` times, then answer (optionally only once released)."""
        seen(ctx, "slow")
        with warnings.catch_warnings():  # logging is deprecated in 2026-07-28; this server still logs
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await ctx.info(f"slow: {steps} steps")
        for step in range(steps):
            await ctx.report_progress(step + 1, steps, f"step {step + 1}")
            await asyncio.sleep(0.01)
        if wait_for_release:
            await state.release.wait()
        return f"done after {steps} steps"

    @server.tool(structured_output=False)
    def picture(ctx: Context) -> list[ImageContent | TextContent]:
        """An image and a caption."""
        seen(ctx, "picture")
        image = ImageContent(type="image", data=base64.b64encode(PNG).decode(), mime_type="image/png")
        return [image, TextContent(type="text", text="a one-pixel picture")]

    @server.tool()
    def fails(ctx: Context) -> str:
        """Always an error result."""
        seen(ctx, "fails")
        raise ToolError("this tool always fails")

    @server.tool()
    def headers(ctx: Context) -> str:
        """Which authorization header reached the upstream."""
        seen(ctx, "headers")
        request = ctx.request_context.request
        value = getattr(request, "headers", {}).get("authorization")
        state.auth_seen.append(value)
        return str(value)

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The user the bearer token was issued for."""
        seen(ctx, "whoami")
        value = str(getattr(ctx.request_context.request, "headers", {}).get("authorization", ""))
        return (state.bearers or {}).get(value.removeprefix("Bearer "), "anonymous")

    @server.tool()
    async def grow(name: str, ctx: Context) -> str:
        """Add a tool at runtime and say so (notifications/tools/list_changed)."""
        seen(ctx, "grow")

        def added(text: str) -> str:
            return text

        server.add_tool(added, name=name, description=f"the grown tool {name}")
        await ctx.request_context.session.send_tool_list_changed()
        return f"added {name}"

    _add_mutable(server, state)
    _add_asking(server, state)

    @server.resource("fixture://readme", mime_type="text/plain")
    def readme() -> str:
        """The fixture's readme."""
        return "fixture upstream"

    _add_subscriptions(server, state)

    @server.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Hello {name}"

    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        names = ["Ada", "Alan", "Grace"]
        return Completion(values=[n for n in names if n.startswith(argument.value)])

    return server


def _mcp_session(ctx: ServerRequestContext[Any]) -> str:
    headers = getattr(ctx.request, "headers", None)
    return str(headers.get("mcp-session-id") if headers is not None else None)


def _add_subscriptions(server: MCPServer, state: UpstreamState) -> None:
    """resources/subscribe and unsubscribe, held per MCP session (2025-11-25)."""

    async def subscribe(
        ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        state.subscribers.setdefault(str(params.uri), {})[_mcp_session(ctx)] = ctx.session
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        state.subscribers.get(str(params.uri), {}).pop(_mcp_session(ctx), None)
        return types.EmptyResult()

    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)


async def announce(running: RunningUpstream, uri: str) -> int:
    """Tell every session subscribed to `uri` that it changed; how many were told."""
    sessions = list(running.state.subscribers.get(uri, {}).values())
    notification = types.ResourceUpdatedNotification(params=types.ResourceUpdatedNotificationParams(uri=uri))
    for session in sessions:
        await session.send_notification(notification)
    return len(sessions)


def _add_mutable(server: MCPServer, state: UpstreamState) -> None:
    def mutable(word: str) -> str:
        state.calls["mutable"] += 1
        return word

    server.add_tool(mutable, name="mutable", description=state.mutable_description)


class Answer(BaseModel):
    """What `ask_user` elicits."""

    answer: str


def _add_asking(server: MCPServer, state: UpstreamState) -> None:
    """Tools that ask their client during the call: sampling, elicitation, roots."""

    @server.tool()
    async def ask_model(prompt: str, ctx: Context) -> str:
        """Ask the client's model (sampling) and answer with what it said."""
        state.calls["ask_model"] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            result = await ctx.session.create_message(
                [SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
                max_tokens=50,
                related_request_id=ctx.request_id,
            )
        content = result.content
        return f"model said: {content.text}" if isinstance(content, TextContent) else "model said nothing"

    @server.tool()
    async def ask_user(question: str, ctx: Context) -> str:
        """Ask the client's user (elicitation) and answer with what they said."""
        state.calls["ask_user"] += 1
        answered = await ctx.elicit(question, Answer)
        return f"user said: {answered.data.answer}" if answered.action == "accept" else answered.action

    @server.tool()
    async def ask_name(ctx: Context) -> str | InputRequiredResult:
        """Ask for the user's name in an input_required round, then greet them."""
        state.calls["ask_name"] += 1
        answer = (ctx.input_responses or {}).get("user_name")
        if isinstance(answer, ElicitResult) and answer.content:
            return f"hello {answer.content.get('name')}"
        schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
        asked = ElicitRequest(params=ElicitRequestFormParams(message="Your name?", requested_schema=schema))
        return InputRequiredResult(input_requests={"user_name": asked})

    @server.tool()
    def needs_sampling(ctx: Context) -> str:
        """Refuse (-32021) a client that did not declare sampling, as the everything server does."""
        state.calls["needs_sampling"] += 1
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.sampling is None:
            raise MCPError(-32021, "needs the client's sampling", {"requiredCapabilities": {"sampling": {}}})
        return "sampling declared"

    @server.tool()
    async def ask_roots(ctx: Context) -> str:
        """List the client's roots and answer with their URIs."""
        state.calls["ask_roots"] += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            roots = await ctx.session.send_request(
                ListRootsRequest(),
                ListRootsResult,
                metadata=ServerMessageMetadata(related_request_id=ctx.request_id),
            )
        return " ".join(str(root.uri) for root in roots.roots)


def change_mutable(running: RunningUpstream, description: str) -> None:
    """Change `mutable`'s definition at the upstream (what a rug pull looks like)."""
    running.state.mutable_description = description
    running.server.remove_tool("mutable")
    _add_mutable(running.server, running.state)


@dataclass
class RunningUpstream:
    url: str
    port: int
    state: UpstreamState
    server: MCPServer
    _uvicorn: QuietServer | None = None
    _task: asyncio.Task[None] | None = None

    async def stop(self, *, kill: bool = False) -> None:
        """Stop; `kill` cuts in-flight requests at once, as when the process dies."""
        if self._uvicorn is not None and self._task is not None:
            self._uvicorn.should_exit = True
            self._uvicorn.force_exit = kill
            if kill:  # what the kernel does to a dead process's sockets
                for connection in list(self._uvicorn.server_state.connections):
                    connection.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=10)
            self._uvicorn = self._task = None

    async def start(self) -> None:
        """(Re)start on the same port with a fresh session manager: old sessions are unknown."""
        self.server = build_server(self.state)
        await _serve(self)


async def _not_found(send: Any, request_id: Any) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": "Method not found"}}
    )
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body.encode()})


async def _unauthorized(send: Any) -> None:
    await send({"type": "http.response.start", "status": 401, "headers": [(b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": b""})


def _recording(app: Any, state: UpstreamState) -> Any:
    """The app, noting each session a client closes with DELETE and every Authorization
    header; with `bearers`, a request without an accepted one is 401; a legacy upstream
    answers `server/discover` "method not found", as 2025-11-25 servers do (clients fall back)."""

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
        state.authorizations.append(authorization)
        if state.bearers is not None and authorization.removeprefix("Bearer ") not in state.bearers:
            await _unauthorized(send)
            return
        if scope["method"] == "DELETE":
            state.deleted.append(dict(scope["headers"]).get(b"mcp-session-id", b"").decode())
        if scope["method"] != "POST" or not state.legacy:
            await app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        with contextlib.suppress(ValueError):
            request = json.loads(body)
            if isinstance(request, dict) and request.get("method") == "server/discover":
                await _not_found(send, request.get("id"))
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return recorded


async def _serve(running: RunningUpstream) -> None:
    app = _recording(running.server.streamable_http_app(), running.state)
    config = uvicorn.Config(app, host="127.0.0.1", port=running.port, log_level="warning", lifespan="on")
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    running.port = server.servers[0].sockets[0].getsockname()[1]
    running.url = f"http://127.0.0.1:{running.port}/mcp"
    running._uvicorn, running._task = server, task


@asynccontextmanager
async def upstream_server(*, legacy: bool = True, echo_name: str = "echo") -> AsyncIterator[RunningUpstream]:
    """The fixture upstream on a free port until the block ends."""
    state = UpstreamState(legacy=legacy, echo_name=echo_name)
    running = RunningUpstream(url="", port=0, state=state, server=build_server(state))
    await _serve(running)
    try:
        yield running
    finally:
        state.release.set()
        await running.stop()
