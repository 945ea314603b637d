"""The headers the session layer rewrites (session_layer.py): what the SDK sees of the
transport session, and the Mcp-Session-Id put on the answer.

The SDK runs stateless, so it never sees Mcp-Session-Id; it sees the transport session as
the ledger session (Ledger-Session) and, for the handlers, in TRANSPORT_SESSION_HEADER,
which only this layer sets: a client's own is dropped, so no request can claim a session.
"""

from __future__ import annotations

from starlette.types import Message, Scope, Send

from mcp_ledger.mcp_api.auth.identity import SESSION_HEADER
from mcp_ledger.mcp_api.transport.session_stream import MCP_SESSION_HEADER

TRANSPORT_SESSION_HEADER = "x-ledger-transport-session"
"""Set by the session layer only (a client's own is dropped): the live transport session's id."""


def with_session(scope: Scope, session_id: str) -> Scope:
    """The scope the SDK sees: no Mcp-Session-Id; the transport session as the ledger
    session unless the client names one explicitly with Ledger-Session (a conversation it
    resumes; the worker still refuses a session the caller does not own)."""
    drop = {MCP_SESSION_HEADER.encode(), TRANSPORT_SESSION_HEADER.encode()}
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in drop]
    if all(k.lower() != SESSION_HEADER.encode() for k, _ in headers):
        headers.append((SESSION_HEADER.encode(), session_id.encode()))
    headers.append((TRANSPORT_SESSION_HEADER.encode(), session_id.encode()))
    return {**scope, "headers": headers}


def without_transport_header(scope: Scope) -> Scope:
    """The scope of a request outside any transport session: a client's claim dropped."""
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != TRANSPORT_SESSION_HEADER.encode()]
    return {**scope, "headers": headers}


def _naming_session(start: Message, session_id: str) -> Message:
    headers = [*start.get("headers", []), (MCP_SESSION_HEADER.encode(), session_id.encode())]
    return {**start, "headers": headers}


def announcing(send: Send, session_id: str) -> Send:
    """`send`, naming the session on the answer whatever its status (a live session's)."""

    async def send_with_session(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = _naming_session(message, session_id)
        await send(message)

    return send_with_session


class Opening:
    """The send of a new session's `initialize`: the id goes out only with a success, so a
    refusal after the layer's own checks (the SDK's) never hands out a usable session."""

    def __init__(self, send: Send, session_id: str) -> None:
        self._send = send
        self._session_id = session_id
        self.refused = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.refused = int(message["status"]) >= 300
            if not self.refused:
                message = _naming_session(message, self._session_id)
        await self._send(message)
