"""Upstream resource subscriptions on the real services (Kafka, PostgreSQL, Redis), API
replicas and workers as processes: a 2026-07-28 listen stream on one replica, naming a
session opened on the other, subscribes to the fixture upstream's resource; the upstream's
update, recorded by whichever worker holds the subscription, reaches that stream, and a
stream of another subject on the other replica hears nothing of it; the subscription ends
upstream with the stream."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from mcp.client.subscriptions import Subscription
from mcp.shared.subscriptions import ResourceUpdated, ServerEvent

from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack
from tests.support.upstream import RunningUpstream, announce, upstream_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
URI = "fixture://readme"
MODERN = "2026-07-28"
WAIT_SECONDS = 60.0


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with upstream_server() as running:
        yield running


async def _next(sub: Subscription) -> ServerEvent:
    return await asyncio.wait_for(anext(sub), WAIT_SECONDS)


async def _until_subscribed(upstream: RunningUpstream, count: int) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while len(upstream.state.subscribers.get(URI, {})) != count:
            await asyncio.sleep(0.1)


async def _session(url: str, bearer: str) -> str:
    async with mcp_client(url, mode=MODERN, token=bearer) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def test_an_upstream_update_reaches_the_subscribed_stream_on_another_replica_and_no_other_subject(
    shared_distributed_stack: DistributedStack, upstream: RunningUpstream
) -> None:
    stack = shared_distributed_stack
    tenant = f"rs-{secrets.token_hex(5)}"
    admin = stack.token(tenant, "root", ("admin",))
    async with mcp_client(stack.urls[0], token=admin) as client:
        structured(
            await client.call_tool(
                "register_server", {"name": "fixture", "url": upstream.url, "prefix": "fx"}
            )
        )
    alice, bob = (stack.token(tenant, sub, ("viewer",)) for sub in ("alice", "bob"))
    alice_session, bob_session = await _session(stack.urls[0], alice), await _session(stack.urls[1], bob)
    bob_uri = f"ledger://sessions/{bob_session}"
    async with (
        mcp_client(stack.urls[1], mode=MODERN, token=alice, session=alice_session) as alice_client,
        mcp_client(stack.urls[0], mode=MODERN, token=bob, session=bob_session) as bob_client,
        alice_client.listen(resource_subscriptions=[URI]) as alice_hears,
        bob_client.listen(resource_subscriptions=[bob_uri]) as bob_hears,
    ):
        await _until_subscribed(upstream, 1)
        assert await announce(upstream, URI) == 1
        assert await _next(alice_hears) == ResourceUpdated(uri=URI)
        structured(await bob_client.call_tool("note_set", {"key": "k", "value": 1}))
        assert await _next(bob_hears) == ResourceUpdated(uri=bob_uri)  # nothing of alice's before it
    await _until_subscribed(upstream, 0)
