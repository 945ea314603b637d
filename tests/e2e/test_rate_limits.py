"""Rate limits through the official MCP client: a caller over its limit gets a JSON-RPC error
saying when to retry, other callers are unaffected, and nothing is written for the refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.rate_limits import RATE_LIMITED
from mcp_ledger.settings import Settings
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"rate_subject": "2/60", "rate_tenant": "100/60", "rate_tenant_overrides": {"tiny": "1/600"}}
    )
    async with gateway(settings) as running_gateway:
        yield running_gateway


async def _last_position(settings: Settings) -> int:
    store = await open_event_store(settings.store_url)
    try:
        return await store.last_position()
    finally:
        await store.close()


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_subject_over_its_limit_is_told_when_to_retry_and_nothing_is_recorded(
    limited: RunningGateway, mode: str
) -> None:
    token = good_token(limited.runtime.settings, sub="alice")
    # A 2025-11-25 client's initialize opened a recorded session: that took one of the two.
    allowed = ("one",) if mode == "legacy" else ("one", "two")
    async with mcp_client(limited.url, mode=mode, token=token) as client:
        for text in allowed:
            assert structured(await client.call_tool("echo", {"text": text})) == {"text": text}
        before = await _last_position(limited.runtime.settings)
        with pytest.raises(MCPError) as refused:
            await client.call_tool("echo", {"text": "three"})
        after = await _last_position(limited.runtime.settings)
    assert refused.value.code == RATE_LIMITED
    assert refused.value.data["scope"] == "subject"
    assert 0 < refused.value.data["retry_after_seconds"] <= 30
    assert "retry after" in refused.value.message
    assert after == before


async def test_another_subject_of_the_tenant_keeps_its_own_allowance(limited: RunningGateway) -> None:
    settings = limited.runtime.settings
    async with mcp_client(limited.url, mode="2026-07-28", token=good_token(settings, sub="alice")) as alice:
        await alice.call_tool("echo", {"text": "a"})
        await alice.call_tool("echo", {"text": "b"})
        with pytest.raises(MCPError):
            await alice.call_tool("echo", {"text": "c"})
    async with mcp_client(limited.url, mode="2026-07-28", token=good_token(settings, sub="bob")) as bob:
        assert structured(await bob.call_tool("echo", {"text": "d"})) == {"text": "d"}


async def test_a_tenant_override_limits_plan_tools_too(limited: RunningGateway) -> None:
    token = good_token(limited.runtime.settings, sub="carol", tenant="tiny")
    async with mcp_client(limited.url, mode="2026-07-28", token=token) as client:
        await client.call_tool("echo", {"text": "first"})
        with pytest.raises(MCPError) as refused:
            await client.call_tool("create_plan", {"plan": {"tasks": [{"id": "a", "tool_name": "echo"}]}})
    assert refused.value.code == RATE_LIMITED
    assert refused.value.data["scope"] == "tenant"
    assert 500 < refused.value.data["retry_after_seconds"] <= 600
