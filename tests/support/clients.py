"""The official MCP client, pointed at a gateway, optionally inside a ledger session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
"""A raw 2025-11-25 initialize request, for tests that speak HTTP without the SDK client."""

JSON_RPC_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@asynccontextmanager
async def mcp_client(
    url: str,
    *,
    session: str | None = None,
    mode: str = "legacy",
    token: str | None = None,
    **callbacks: Any,
) -> AsyncIterator[Client]:
    """An official-SDK client over Streamable HTTP; `mode` picks the protocol era; `callbacks`
    (sampling_callback, elicitation_callback, list_roots_callback) answer a server's requests."""
    headers = {"Ledger-Session": session} if session else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, **callbacks) as client,
    ):
        yield client


def structured(result: types.CallToolResult) -> dict[str, Any]:
    """The structured content of a successful result (fails loudly on an error result)."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def text_of(result: types.CallToolResult) -> str:
    """All text content of a result."""
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def open_session(url: str, mode: str = "legacy") -> str:
    """A new ledger session id, opened through the gateway."""
    async with mcp_client(url, mode=mode) as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
    assert isinstance(session_id, str)
    return session_id


def parse_json(text: str) -> Any:
    return json.loads(text)
