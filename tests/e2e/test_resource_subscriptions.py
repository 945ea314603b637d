"""resources/subscribe and unsubscribe for 2025-11-25 clients, over HTTP with the SDK client.

A session's state resource changes on every note; its client hears
notifications/resources/updated on its GET stream only while subscribed. Log lines (level
info) come after each update of the same event, so one arriving without an update before it
proves the update was held back. Both methods are 2025-11-25 only: the SDK client warns that
logging and resources/subscribe are deprecated as of 2026-07-28, and these tests mean to use them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from mcp_ledger.mcp_api.transport.sessions import MAX_SUBSCRIPTIONS
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.subscriptions import WAIT_SECONDS, Heard, legacy_client

pytestmark = pytest.mark.filterwarnings(f"ignore::{MCPDeprecationWarning.__module__}.MCPDeprecationWarning")


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running:
        yield running


async def _own_session_uri(client: Client) -> str:
    listed = await client.list_resources()
    uris = [str(r.uri) for r in listed.resources if str(r.uri).startswith("ledger://sessions/")]
    assert len(uris) == 1, uris
    return uris[0]


async def test_a_subscribed_session_hears_its_state_change_and_stops_hearing_it_after_unsubscribing(
    local: RunningGateway,
) -> None:
    heard = Heard()
    async with legacy_client(local.url, heard) as client:
        assert client.server_capabilities is not None
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe is True
        uri = await _own_session_uri(client)
        await client.set_logging_level("info")
        await client.subscribe_resource(uri)
        # The GET stream opens beside the first requests: note until an update comes (bounded).
        async with asyncio.timeout(WAIT_SECONDS):
            while uri not in heard.updates():
                await client.call_tool("note_set", {"key": "k", "value": 1})
                await asyncio.sleep(0.2)
        await client.unsubscribe_resource(uri)
        updates, logs = len(heard.updates()), heard.logs()
        await client.call_tool("note_set", {"key": "k", "value": 2})
        await heard.until(lambda: heard.logs() > logs)  # the last note's log line
        assert len(heard.updates()) == updates


async def test_a_session_without_a_subscription_hears_no_resource_updates(local: RunningGateway) -> None:
    heard = Heard()
    async with legacy_client(local.url, heard) as client:
        await client.set_logging_level("info")
        async with asyncio.timeout(WAIT_SECONDS):
            while not heard.logs():
                await client.call_tool("note_set", {"key": "k", "value": 1})
                await asyncio.sleep(0.2)
        assert heard.updates() == []


async def test_a_session_holds_a_bounded_number_of_subscriptions(local: RunningGateway) -> None:
    async with legacy_client(local.url, Heard()) as client:
        for index in range(MAX_SUBSCRIPTIONS):
            await client.subscribe_resource(f"test://watched/{index}")
        await client.subscribe_resource("test://watched/0")  # held already: not one more
        with pytest.raises(MCPError) as refused:
            await client.subscribe_resource("test://one-too-many")
        await client.unsubscribe_resource("test://watched/0")
        await client.subscribe_resource("test://one-too-many")
    assert refused.value.error.code == types.INVALID_PARAMS
