"""Upstream resource subscriptions on the real services (Kafka, PostgreSQL, Redis), API
replicas and workers as processes: a 2026-07-28 listen stream on one replica, naming a
session opened on the other, subscribes to the fixture upstream's resource; the upstream's
update, recorded by whichever worker holds the subscription, reaches that stream, and a
stream of another subject on the other replica hears nothing of it; the subscription ends
upstream with the stream (fixtures: conftest.py)."""

from __future__ import annotations

import pytest

from tests.integration.federation.recorded import register_fixture
from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack
from tests.support.subscriptions import listens_kept_apart
from tests.support.upstream import RunningUpstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
URI = "fixture://readme"
MODERN = "2026-07-28"
WAIT_SECONDS = 60.0


async def _session(url: str, bearer: str) -> str:
    async with mcp_client(url, mode=MODERN, token=bearer) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def test_an_upstream_update_reaches_the_subscribed_stream_on_another_replica_and_no_other_subject(
    stack: DistributedStack, tenant: str, upstream: RunningUpstream
) -> None:
    await register_fixture(stack, tenant, upstream)
    alice, bob = (stack.token(tenant, sub, ("viewer",)) for sub in ("alice", "bob"))
    alice_session, bob_session = await _session(stack.urls[0], alice), await _session(stack.urls[1], bob)
    bob_uri = f"ledger://sessions/{bob_session}"
    async with (
        mcp_client(stack.urls[1], mode=MODERN, token=alice, session=alice_session) as alice_client,
        mcp_client(stack.urls[0], mode=MODERN, token=bob, session=bob_session) as bob_client,
    ):
        await listens_kept_apart(alice_client, bob_client, bob_uri, upstream, URI, wait_seconds=WAIT_SECONDS)
