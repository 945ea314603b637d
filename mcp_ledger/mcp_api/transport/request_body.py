"""A POST body the session layer (session_layer.py) reads before the SDK does: read once,
up to a bound, then replayed to the SDK as if unread; and what the layer looks for in it
(a handshake `initialize`, a progressToken).

The layer must read the body to choose (open a session, stream the answer, relay a
response), but the SDK reads it again, so it is handed back through `replaying`. A body
past MAX_PEEK_BYTES is not read further here: the SDK gets it whole and its own limits apply.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Message, Receive

from mcp_ledger.checks.documents import MAX_NESTING

MAX_PEEK_BYTES = 4 * 1024 * 1024
MAX_BODY_NESTING = MAX_NESTING + 8
"""Arguments may nest MAX_NESTING deep; the JSON-RPC envelope around them adds a few levels."""


async def read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body and whether it was read whole (False past MAX_PEEK_BYTES)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_PEEK_BYTES:
            return b"".join(chunks), False


def replaying(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A receive that hands out `body` first, then what `receive` still holds."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replay


def parsed(body: bytes) -> dict[str, Any]:
    """The body's JSON object, or {} for anything else (the SDK answers a bad one)."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def is_initialize(body: bytes, protocol_header: str | None) -> bool:
    """Whether the body is a well-formed handshake-era initialize request. Checked in full
    before a ledger session is opened: the SDK refuses a malformed one (or one declaring a
    stateless protocol version) after this layer, and a session opened for it would be an
    orphan recorded in the store."""
    if protocol_header is not None and protocol_header not in HANDSHAKE_PROTOCOL_VERSIONS:
        return False
    try:
        request = types.JSONRPCRequest.model_validate_json(body)
        types.InitializeRequest.model_validate({"method": request.method, "params": request.params})
    except ValueError:
        return False
    return request.method == "initialize"


def asks_progress(payload: dict[str, Any]) -> bool:
    """Whether the request names a progressToken (its answer is then streamed)."""
    params = payload.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and meta.get("progressToken") is not None
