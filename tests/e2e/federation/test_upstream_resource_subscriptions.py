"""resources/subscribe to an upstream's resource through the embedded gateway (auth on), with
the official client on both sides: the subscription is held on the session's upstream
session, the upstream's notifications/resources/updated reaches the subscribed session's GET
stream (recorded in its stream first), and nobody else's; unsubscribing stops it upstream.
Both methods are 2025-11-25 only (the SDK warns; these tests mean to use them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

from tests.e2e.federation.steps import opened_events, register, token
from tests.support.clients import structured
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream, announce

URI = "fixture://readme"
WAIT_SECONDS = 20.0

pytestmark = pytest.mark.filterwarnings(f"ignore::{MCPDeprecationWarning.__module__}.MCPDeprecationWarning")


class _Heard:
    def __init__(self) -> None:
        self.notifications: list[types.ServerNotification] = []
        self.changed = asyncio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if not isinstance(message, Exception):
            self.notifications.append(message)
            self.changed.set()

    def updates(self) -> list[str]:
        return [
            str(n.params.uri) for n in self.notifications if isinstance(n, types.ResourceUpdatedNotification)
        ]

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while not check():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def _agent(gw: RunningGateway, heard: _Heard, subject: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token(gw, sub=subject, roles=('viewer',))}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        Client(
            streamable_http_client(gw.url, http_client=http), mode="legacy", message_handler=heard
        ) as client,
    ):
        yield client


async def _until_subscribed(upstream: RunningUpstream, count: int) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while len(upstream.state.subscribers.get(URI, [])) != count:
            await asyncio.sleep(0.05)


async def _announce_until_heard(upstream: RunningUpstream, heard: _Heard) -> None:
    """The GET stream opens beside the first requests: announce until one update arrives."""
    async with asyncio.timeout(WAIT_SECONDS):
        while URI not in heard.updates():
            await announce(upstream, URI)
            heard.changed.clear()
            try:
                async with asyncio.timeout(0.5):
                    await heard.changed.wait()
            except TimeoutError:
                continue


async def test_a_subscribed_agent_hears_the_upstream_s_update_and_another_subject_hears_nothing(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    alice, bob = _Heard(), _Heard()
    async with _agent(secured, alice, "alice") as subscriber, _agent(secured, bob, "bob") as bystander:
        await bystander.list_resources()  # bob has a session and its GET stream, and no subscription
        await subscriber.subscribe_resource(URI)
        await _until_subscribed(upstream, 1)
        await _announce_until_heard(upstream, alice)
        await bystander.send_ping()
        await asyncio.sleep(0.5)  # what bob would hear has been delivered by now
    assert alice.updates().count(URI) >= 1
    assert bob.updates() == []
    recorded = [
        e for e in await opened_events(secured) if e.data.get("tool_name") == "upstream_resource_updated"
    ]
    assert recorded, "the update is recorded in the subscriber's session"
    assert all(e.data.get("structured") in (None, {"uri": URI}) for e in recorded)


async def test_unsubscribing_drops_the_subscription_at_the_upstream_and_later_updates_stay_unheard(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    heard = _Heard()
    async with _agent(secured, heard, "alice") as client:
        await client.subscribe_resource(URI)
        await _until_subscribed(upstream, 1)
        await _announce_until_heard(upstream, heard)
        await client.unsubscribe_resource(URI)
        await _until_subscribed(upstream, 0)
        before = len(heard.updates())
        assert await announce(upstream, URI) == 0
        await client.send_ping()
        await asyncio.sleep(0.5)
        assert len(heard.updates()) == before


async def test_subscribing_to_an_upstream_resource_needs_no_more_than_listing_it(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with _agent(secured, _Heard(), "carol") as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert URI in listed
        await client.subscribe_resource(URI)
        await _until_subscribed(upstream, 1)
