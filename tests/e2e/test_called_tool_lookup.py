"""A tools/call's tool is found once, ahead of dispatch, for that caller: the SDK's Mcp-Param
header check still sees a registered tool's schema (without it, the check would be skipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import JSON_RPC_HEADERS, mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway

ROUTED = {
    "name": "routed_lookup",
    "description": "a tool whose region an intermediary routes on",
    "input_schema": {
        "type": "object",
        "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
        "required": ["region"],
    },
    # Never reached: every call below is refused before dispatch, or fails on this port.
    "binding": {"kind": "http", "method": "GET", "base_url": "http://127.0.0.1:9", "path": "/"},
}


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path).model_copy(update={"registry_allowed_hosts": "127.0.0.1"})
    async with gateway(settings) as running_gateway:
        yield running_gateway


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def _call(url: str, region_header: str, region: str) -> httpx.Response:
    """A 2026-07-28 tools/call as the SDK client sends it, with the Region header given."""
    headers = {
        **JSON_RPC_HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "routed_lookup",
        "mcp-param-region": region_header,
    }
    body = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "routed_lookup", "arguments": {"region": region}, "_meta": MODERN_META},
    }
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await http.post(url, json=body, headers=headers)


async def test_a_registered_tools_header_that_contradicts_its_argument_is_refused(
    embedded: RunningGateway,
) -> None:
    async with mcp_client(embedded.url) as client:
        assert structured(await client.call_tool("register_tools", {"tools": [ROUTED]}))["registered"]
    refused = await _call(embedded.url, "us", "eu")
    assert refused.status_code == 400, refused.text
    assert "Mcp-Param-Region" in refused.json()["error"]["message"]


async def test_a_registered_tool_called_with_agreeing_headers_is_dispatched(
    embedded: RunningGateway,
) -> None:
    async with mcp_client(embedded.url) as client:
        assert structured(await client.call_tool("register_tools", {"tools": [ROUTED]}))["registered"]
    answered = await _call(embedded.url, "eu", "eu")
    assert answered.status_code == 200, answered.text
    assert answered.json()["result"]["isError"]  # dispatched: the binding's port refuses the connection
