"""Writing a relayed upstream request onto a 2025-11-25 call's own SSE stream.

The SDK runs stateless behind the session layer, so its request-scoped channel refuses to
send server-to-client requests (`can_send_request` is False: the answer would reach another
stateless transport). The gateway routes the answer itself (replies.py, the worker's
relay/backchannel.py), so only the writing is needed: the JSON-RPC request goes onto the
dispatcher's write stream tagged with the call's request id, exactly as the SDK tags its own
notifications, and the transport puts it on that request's SSE stream. It reaches into the
SDK's dispatch context for that (no public API writes a request without awaiting its
answer); without one this raises and the worker's upstream hears an error.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.message import ServerMessageMetadata


class NoStreamError(Exception):
    """This request has no stream a relayed request could be written on."""


async def write_request(ctx: ServerRequestContext[Any], request_id: str, method: str, params: Any) -> None:
    """Put a JSON-RPC request (id, method, params) on the stream answering `ctx`'s request.

    Raises:
        NoStreamError: the request is not answered on a stream this server can write to.
    """
    outbound = getattr(ctx.session, "_request_outbound", None)
    dispatcher = getattr(outbound, "_dispatcher", None)
    write = getattr(dispatcher, "_write", None)
    if write is None or ctx.request_id is None:
        raise NoStreamError("no request stream to write on")
    message = types.JSONRPCRequest(
        jsonrpc="2.0", id=request_id, method=method, params=params if isinstance(params, dict) else None
    )
    await write(message, ServerMessageMetadata(related_request_id=ctx.request_id))
