"""resources/subscribe and resources/unsubscribe for 2025-11-25 sessions.

A subscription belongs to the MCP transport session (Mcp-Session-Id) and ends with it; the
session's GET stream then carries notifications/resources/updated for that URI (and only for
subscribed URIs: transport/session_stream.py). Updates only ever come from the session's own
events (transport/notifications.py), so subscribing to a URI that is someone else's yields
nothing; a URI that names nothing yet is accepted, as the spec allows, within a bound per session.
The 2026-07-28 wire has no such methods (subscriptions/listen replaces them); the SDK answers
them there with method-not-found.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_ledger.mcp_api.transport.session_layer import TRANSPORT_SESSION_HEADER
from mcp_ledger.mcp_api.transport.sessions import MAX_SUBSCRIPTIONS, TransportSessions

MAX_URI_CHARS = 2048


class ResourceSubscriptions:
    """The two handlers, over the transport sessions' store."""

    def __init__(self, sessions: TransportSessions) -> None:
        self._sessions = sessions

    async def subscribe(
        self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        session_id, uri = _session(ctx), _uri(params.uri)
        if not await self._sessions.subscribe(session_id, uri):
            raise MCPError(types.INVALID_PARAMS, f"a session holds at most {MAX_SUBSCRIPTIONS} subscriptions")
        return types.EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        await self._sessions.unsubscribe(_session(ctx), _uri(params.uri))
        return types.EmptyResult()


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
