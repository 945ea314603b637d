"""A call that needs a client capability the client did not declare is refused, and the
client is never asked: over the 2026-07-28 wire with -32021 MissingRequiredClientCapability
and HTTP 400 (SEP-2575), naming the capability; over 2025-11-25 as a tool error.

Planning a goal with no planner configured asks the client's LLM by sampling, so
`create_plan {goal}` is the gateway's own call that needs `sampling`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.eventstore.sql import open_event_store
from tests.support.clients import mcp_client, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway

PROTOCOL = "2026-07-28"
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": PROTOCOL,
    "mcp-method": "tools/call",
    "mcp-name": "create_plan",
}


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running:
        yield running


def _plan_call(capabilities: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "create_plan", "arguments": {"goal": "say hi"}, "_meta": meta},
    }


async def _recorded(gw: RunningGateway) -> list[str]:
    store = await open_event_store(gw.runtime.settings.store_url)
    try:
        return [event.event_type for event in await store.read_all()]
    finally:
        await store.close()


async def test_a_stateless_call_needing_undeclared_sampling_is_32021_with_http_400(
    local: RunningGateway,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(local.url, json=_plan_call({}), headers=HEADERS)
    body = response.json()
    assert response.status_code == 400
    assert body["id"] == 7
    assert body["error"]["code"] == -32021
    assert body["error"]["data"] == {"requiredCapabilities": {"sampling": {}}}
    assert "PlanAccepted" not in await _recorded(local)


async def test_a_stateless_call_from_a_client_that_declared_sampling_is_asked_to_sample(
    local: RunningGateway,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(local.url, json=_plan_call({"sampling": {}}), headers=HEADERS)
    result = response.json()["result"]
    assert response.status_code == 200
    assert result["resultType"] == "input_required"
    assert [r["method"] for r in result["inputRequests"].values()] == ["sampling/createMessage"]


async def test_a_2025_11_25_client_without_sampling_gets_a_tool_error_and_is_never_asked(
    local: RunningGateway,
) -> None:
    async with mcp_client(local.url, mode="legacy") as client:
        result = await client.call_tool("create_plan", {"goal": "say hi"})
    assert result.is_error
    assert "sampling capability" in text_of(result)
    assert "PlanAccepted" not in await _recorded(local)
