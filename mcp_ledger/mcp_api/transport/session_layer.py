"""MCP transport sessions (2025-11-25 Streamable HTTP) that any API replica can serve.

The SDK's own stateful transport keeps sessions in one process, so the SDK runs stateless
behind this ASGI layer, which owns the session semantics instead:

- POST `initialize` without Mcp-Session-Id opens a ledger session for the authenticated
  caller (a fresh CSPRNG id, never one the client chose) and returns it as Mcp-Session-Id,
  only once the transport checks (transport/checks.py, outside this layer), the body and the
  rate limit passed, and only with a successful answer;
- POST with Mcp-Session-Id needs a live session of the same tenant and subject (else 404,
  the same answer for foreign, expired and unknown ids); the handlers then see it as the
  ledger session;
- GET opens the session's notification stream (SSE), resumable with Last-Event-ID;
- DELETE closes the ledger session and forgets the transport session.

A call of an upstream's tool, and any request naming a progressToken, is answered on a
stream (SSE) when the client accepts one, so the notifications relayed while it runs reach
it; everything else is plain JSON.

A POSTed JSON-RPC response (the agent's answer to an upstream's request the gateway wrote on
a call's stream) is relayed to the waiting worker and accepted with 202, on any replica.

Requests without Mcp-Session-Id (the stateless 2026-07-28 protocol) pass straight through,
except that any POST body nesting deeper than MAX_BODY_NESTING is refused here with -32600
(before this layer's own parse, which would otherwise recurse past the stack).

The body read ahead of the SDK lives in request_body.py, the headers this layer rewrites in
session_headers.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.streamable_http import check_accept_headers
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_ledger.checks.documents import nests_deeper
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.access_tokens import UnauthenticatedError
from mcp_ledger.mcp_api.auth.identity import Identity, IdentityResolver
from mcp_ledger.mcp_api.backchannel.replies import is_response
from mcp_ledger.mcp_api.rate_limits import RateGuard
from mcp_ledger.mcp_api.transport.called_tool import ToolFinder, called_name, calling, task_name_mismatch
from mcp_ledger.mcp_api.transport.notifications import NotificationHub
from mcp_ledger.mcp_api.transport.request_body import (
    MAX_BODY_NESTING,
    asks_progress,
    is_initialize,
    parsed,
    read_body,
    replaying,
)
from mcp_ledger.mcp_api.transport.session_headers import (
    TRANSPORT_SESSION_HEADER as TRANSPORT_SESSION_HEADER,  # server.py, subscriptions.py read it here
)
from mcp_ledger.mcp_api.transport.session_headers import (
    Opening,
    announcing,
    with_session,
    without_transport_header,
)
from mcp_ledger.mcp_api.transport.session_stream import MCP_SESSION_HEADER, SessionStream, TaskStatus
from mcp_ledger.mcp_api.transport.sessions import TransportSession, TransportSessions

log = logging.getLogger(__name__)

SessionOpener = Callable[[Identity], Awaitable[str]]
SessionCloser = Callable[[Identity, str], Awaitable[None]]

Answer = Callable[[Identity, dict[str, Any]], Awaitable[bool]]
"""Relays a POSTed JSON-RPC response to the worker whose upstream asked for it (the back
channel, mcp_api/backchannel/replies.py); False for one that answers nothing relayed."""


class SessionOpenError(Exception):
    """A ledger session could not be opened for `initialize` (bus down, timeout)."""


def _error(status: int, code: int, message: str, request_id: object = None) -> Response:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


class SessionLayer:
    """ASGI wrapper around the SDK's stateless Streamable HTTP app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        streaming_app: ASGIApp,
        identities: IdentityResolver,
        sessions: TransportSessions,
        ttl: float,
        hub: NotificationHub,
        open_session: SessionOpener,
        close_session: SessionCloser,
        rate_guard: RateGuard | None = None,
        find_tool: ToolFinder | None = None,
        answer: Answer | None = None,
        task_status: TaskStatus | None = None,
    ) -> None:
        self._answer = answer
        self._rate_guard = rate_guard
        self._find_tool = find_tool
        self._app = app
        self._streaming_app = streaming_app
        self._identities = identities
        self._sessions = sessions
        self._ttl = ttl
        self._stream = SessionStream(hub, sessions, ttl, task_status)
        self._open = open_session
        self._close = close_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        try:
            identity = self._identities.resolve(request)
        except UnauthenticatedError:
            await _error(401, -32001, "authentication required")(scope, receive, send)
            return
        session_id = request.headers.get(MCP_SESSION_HEADER)
        method = scope["method"]
        if session_id is None:
            if method == "POST":
                await self._post_without_session(identity, scope, receive, send)
            else:
                await _error(405, -32000, "GET and DELETE need an Mcp-Session-Id")(scope, receive, send)
            return
        session = await self._sessions.touch(session_id, self._ttl)
        if session is None or (session.tenant, session.subject) != (identity.tenant, identity.subject):
            await _error(404, -32001, "session not found; initialize a new one")(scope, receive, send)
            return
        if method == "GET":
            await self._stream.response(request, session)(scope, receive, send)
        elif method == "DELETE":
            await self._close(identity, session_id)
            await self._sessions.end(session_id)
            await Response(status_code=204)(scope, receive, send)
        else:
            scope = with_session(scope, session_id)
            await self._forward(identity, scope, receive, announcing(send, session_id))

    async def _forward(self, identity: Identity, scope: Scope, receive: Receive, send: Send) -> None:
        """To the SDK: streamed for upstream tool calls and requests asking for progress,
        plain JSON otherwise; a tools/call with its tool found first, once: that one lookup
        serves the SDK, the call handler and the choice to stream (transport/called_tool.py)."""
        body, complete = await read_body(receive)
        if complete and nests_deeper(body, MAX_BODY_NESTING):
            refusal = f"the request nests deeper than {MAX_BODY_NESTING} levels"
            await _error(400, types.INVALID_REQUEST, refusal)(scope, receive, send)
            return
        payload = parsed(body) if complete else {}
        if self._answer is not None and is_response(payload):
            accepted = await self._answer(identity, payload)
            no = _error(400, types.INVALID_REQUEST, "not a response to a relayed request")
            await (Response(status_code=202) if accepted else no)(scope, receive, send)
            return
        mismatch = task_name_mismatch(payload, Request(scope).headers.get("mcp-name"))
        if mismatch is not None:
            await _error(400, types.HEADER_MISMATCH, mismatch, payload.get("id"))(scope, receive, send)
            return
        name = called_name(payload) if self._find_tool is not None else None
        found, spec = False, None
        if name is not None and self._find_tool is not None:
            try:
                spec, found = await self._find_tool(Request(scope), identity, name), True
            except Exception:  # boundary: the SDK's own lookup and the call handler report it
                log.debug("tool %r not resolved ahead of dispatch", name, exc_info=True)
        streamed = complete and self._streams(Request(scope), payload, spec)
        app = self._streaming_app if streamed else self._app
        if name is None or not found:
            await app(scope, replaying(body, complete, receive), send)
            return
        with calling(name, spec):
            await app(scope, replaying(body, complete, receive), send)

    @staticmethod
    def _streams(request: Request, payload: dict[str, Any], spec: ToolSpec | None) -> bool:
        """A request naming a progressToken, or a call of an upstream's tool (its spec keeps
        the upstream's listing), gets a streamed (SSE) answer, so the notifications sent
        while it runs reach the caller; every other request, and a client that does not
        accept SSE, gets plain JSON (cheaper, and never a 406 after the checks passed)."""
        if not check_accept_headers(request)[1]:
            return False
        return asks_progress(payload) or (spec is not None and spec.listing is not None)

    async def _post_without_session(
        self, identity: Identity, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body, complete = await read_body(receive)
        receive = replaying(body, complete, receive)
        protocol = Request(scope).headers.get("mcp-protocol-version")
        if not (complete and is_initialize(body, protocol)):
            await self._forward(identity, without_transport_header(scope), receive, send)
            return
        refusal = await self._refusal(identity)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            session_id = await self._open(identity)
        except SessionOpenError as error:
            await _error(503, -32603, str(error))(scope, receive, send)
            return
        await self._sessions.create(
            TransportSession(session_id, identity.tenant, identity.subject), self._ttl
        )
        opening = Opening(send, session_id)
        await self._forward(identity, with_session(scope, session_id), receive, opening)
        if opening.refused:
            await self._sessions.end(session_id)
            await self._close(identity, session_id)

    async def _refusal(self, identity: Identity) -> Response | None:
        """The answer refusing a new session over the rate limit (a session is recorded, so
        opening one is charged like a tool call), or None."""
        if self._rate_guard is None:
            return None
        try:
            await self._rate_guard.admit(identity)
        except MCPError as error:
            body = {"jsonrpc": "2.0", "id": None, "error": error.error.model_dump(exclude_none=True)}
            retry = error.error.data["retry_after_seconds"] if isinstance(error.error.data, dict) else 1
            return JSONResponse(body, status_code=429, headers={"retry-after": str(math.ceil(retry))})
        return None
