"""On the 2026-07-28 wire a request's answer carries nothing but that request's own messages:
no log notifications unless the request set a log level in `_meta` (the gateway's own tools
log nothing per request; 2025-11-25 sessions hear their log lines on the GET stream), and no
server-to-client requests (sampling is an input_required result, tests/e2e/
test_client_capabilities.py). Each call asks for progress, so anything sent before its answer
turns the answer into an SSE stream; it is read as the client reads it, every event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.embedded import RunningGateway, embedded_settings, gateway

PROTOCOL = "2026-07-28"
TOKEN = "progress-of-11"


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running:
        yield running


def _messages(response: httpx.Response) -> list[dict[str, Any]]:
    if response.headers["content-type"].startswith("text/event-stream"):
        return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    return [response.json()]


async def _call(gw: RunningGateway, name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "elicitation": {}},
        "progressToken": TOKEN,
    }
    request = {
        "jsonrpc": "2.0",
        "id": 11,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    async with httpx.AsyncClient(timeout=30) as http:
        return _messages(await http.post(gw.url, json=request, headers=headers))


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("echo", {"text": "hi"}),
        ("create_plan", {"goal": "say hi"}),  # asks the client's LLM: an input_required result
        ("create_plan", {"plan": {"tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": "x"}}]}}),
    ],
)
async def test_a_stateless_call_without_a_log_level_gets_its_own_response_and_nothing_else(
    local: RunningGateway, name: str, arguments: dict[str, Any]
) -> None:
    messages = await _call(local, name, arguments)
    *before, answer = messages
    assert answer.get("id") == 11
    assert "method" not in answer
    assert [m for m in before if m.get("method") != "notifications/progress"] == []
    assert {m["params"]["progressToken"] for m in before} <= {TOKEN}
