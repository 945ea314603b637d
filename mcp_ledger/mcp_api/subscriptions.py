"""resources/subscribe and resources/unsubscribe for 2025-11-25 sessions.

A subscription belongs to the MCP transport session (Mcp-Session-Id) and ends with it; the
session's GET stream then carries notifications/resources/updated for that URI (and only for
subscribed URIs: transport/session_stream.py). Updates only ever come from the session's own
events (transport/notifications.py), so subscribing to a URI that is someone else's yields
nothing; a URI that names nothing yet is accepted, as the spec allows, within a bound per session.
A URI of an upstream server in the caller's scope is also forwarded (mcp_api/upstreams.py): a
recorded command the worker runs on the session's held upstream session, whose updates it
records in the session's stream; an upstream's refusal is the caller's error.
The 2026-07-28 wire has no such methods (subscriptions/listen replaces them); the SDK answers
them there with method-not-found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.transport.session_layer import TRANSPORT_SESSION_HEADER
from mcp_ledger.mcp_api.transport.sessions import MAX_SUBSCRIPTIONS, TransportSessions
from mcp_ledger.mcp_api.upstreams import UpstreamSurface

MAX_URI_CHARS = 2048


class ResourceSubscriptions:
    """The two handlers, over the transport sessions' store."""

    def __init__(
        self,
        sessions: TransportSessions,
        upstreams: UpstreamSurface | None = None,
        identity: Callable[[ServerRequestContext[Any]], Identity] | None = None,
    ) -> None:
        self._sessions = sessions
        self._upstreams = upstreams
        self._identity = identity

    async def subscribe(
        self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        session_id, uri = _session(ctx), _uri(params.uri)
        if not await self._sessions.subscribe(session_id, uri):
            raise MCPError(types.INVALID_PARAMS, f"a session holds at most {MAX_SUBSCRIPTIONS} subscriptions")
        try:
            await self._forward(ctx, session_id, uri, on=True)
        except MCPError:
            await self._sessions.unsubscribe(session_id, uri)  # refused upstream: not held here either
            raise
        return types.EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        session_id, uri = _session(ctx), _uri(params.uri)
        await self._sessions.unsubscribe(session_id, uri)
        await self._forward(ctx, session_id, uri, on=False)
        return types.EmptyResult()

    async def _forward(self, ctx: ServerRequestContext[Any], session_id: str, uri: str, *, on: bool) -> None:
        """An upstream's URI: the subscription held (or dropped) on the upstream too."""
        if self._upstreams is None or self._identity is None:
            return
        await self._upstreams.subscription(self._identity(ctx), session_id, uri, on=on)


def _session(ctx: ServerRequestContext[Any]) -> str:
    """The transport session the session layer admitted this request into."""
    session_id = ctx.request.headers.get(TRANSPORT_SESSION_HEADER) if ctx.request is not None else None
    if session_id is None:
        raise MCPError(types.INVALID_REQUEST, "resource subscriptions need an MCP session (initialize first)")
    return str(session_id)


def _uri(uri: object) -> str:
    text = str(uri)
    if len(text) > MAX_URI_CHARS:
        raise MCPError(types.INVALID_PARAMS, f"resource URIs are at most {MAX_URI_CHARS} characters")
    return text
