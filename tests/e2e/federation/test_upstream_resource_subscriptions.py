"""resources/subscribe to an upstream's resource through the embedded gateway (auth on), with
the official client on both sides: the subscription is held on the session's upstream
session, the upstream's notifications/resources/updated reaches the subscribed session's GET
stream (recorded in its stream first), and nobody else's; unsubscribing stops it upstream.
On the 2026-07-28 wire a subscriptions/listen stream naming its session does the same for its
lifetime. resources/subscribe is 2025-11-25 only (the SDK warns; these tests mean to use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tests.e2e.federation.steps import opened_events, register, token
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway
from tests.support.subscriptions import (
    Heard,
    legacy_client,
    listens_kept_apart,
    subscribe_and_hear,
    until_subscribed,
)
from tests.support.upstream import RunningUpstream, announce, upstream_server

URI = "fixture://readme"

pytestmark = pytest.mark.filterwarnings(f"ignore::{MCPDeprecationWarning.__module__}.MCPDeprecationWarning")


def _agent(gw: RunningGateway, heard: Heard, subject: str) -> AbstractAsyncContextManager[Client]:
    return legacy_client(gw.url, heard, bearer=token(gw, sub=subject, roles=("viewer",)))


@asynccontextmanager
async def _subscribed_agent(
    gw: RunningGateway, upstream: RunningUpstream, subject: str
) -> AsyncIterator[tuple[Client, Heard]]:
    """An agent subscribed to URI, held upstream, that heard its first update."""
    heard = Heard()
    async with _agent(gw, heard, subject) as client:
        await subscribe_and_hear(client, upstream, URI, heard)
        yield client, heard


async def test_a_subscribed_agent_hears_the_upstream_s_update_and_another_subject_hears_nothing(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    alice, bob = Heard(), Heard()
    async with _agent(secured, alice, "alice") as subscriber, _agent(secured, bob, "bob") as bystander:
        await bystander.list_resources()  # bob has a session and its GET stream, and no subscription
        await subscribe_and_hear(subscriber, upstream, URI, alice)
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
    async with _subscribed_agent(secured, upstream, "alice") as (client, heard):
        await client.unsubscribe_resource(URI)
        await until_subscribed(upstream, URI, 0)
        before = len(heard.updates())
        assert await announce(upstream, URI) == 0
        await client.send_ping()
        await asyncio.sleep(0.5)
        assert len(heard.updates()) == before


async def test_subscribing_to_an_upstream_resource_needs_no_more_than_listing_it(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with _agent(secured, Heard(), "carol") as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        assert URI in listed
        await client.subscribe_resource(URI)
        await until_subscribed(upstream, URI, 1)


MODERN = "2026-07-28"


async def _modern_session(gw: RunningGateway, bearer: str) -> str:
    async with mcp_client(gw.url, mode=MODERN, token=bearer) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def test_a_listen_stream_naming_its_session_hears_the_upstream_s_update_and_another_subject_s_does_not(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    alice, bob = (token(secured, sub=sub, roles=("viewer",)) for sub in ("alice", "bob"))
    alice_session, bob_session = await _modern_session(secured, alice), await _modern_session(secured, bob)
    bob_uri = f"ledger://sessions/{bob_session}"
    async with (
        mcp_client(secured.url, mode=MODERN, token=alice, session=alice_session) as alice_client,
        mcp_client(secured.url, mode=MODERN, token=bob, session=bob_session) as bob_client,
    ):
        await listens_kept_apart(alice_client, bob_client, bob_uri, upstream, URI)


async def test_a_listen_stream_for_an_upstream_resource_without_a_session_is_refused(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, mode=MODERN, token=token(secured, roles=("viewer",))) as client:
        with pytest.raises(MCPError) as refused:
            async with client.listen(resource_subscriptions=[URI]):
                pass
    assert "session" in str(refused.value.error.message)
    assert upstream.state.subscribers.get(URI, {}) == {}


async def test_after_erasing_the_subscriber_an_upstream_update_records_nothing_more(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with _subscribed_agent(secured, upstream, "dave"):
        pass
    base = secured.url.removesuffix("/mcp")
    async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {token(secured)}"}) as http:
        answer = await http.post(f"{base}/admin/erasures", json={"subject": "dave"})
    assert answer.status_code == 200, answer.text
    recorded = len(await _updates_recorded(secured))
    assert await announce(upstream, URI) == 1  # the upstream still holds its side
    await asyncio.sleep(1.0)
    assert len(await _updates_recorded(secured)) == recorded


async def _updates_recorded(gw: RunningGateway) -> list[object]:
    return [e for e in await opened_events(gw) if e.data.get("tool_name") == "upstream_resource_updated"]


async def test_a_2025_11_25_agent_s_subscription_to_a_dual_era_upstream_is_held_on_a_2025_11_25_session(
    secured: RunningGateway,
) -> None:
    # A 2025-11-25 agent's calls meet an upstream in the 2025-11-25 era first (the back
    # channel needs it), so an upstream that speaks both eras holds its subscription.
    async with upstream_server(legacy=False) as modern:
        structured(await register(secured, modern))
        async with _agent(secured, Heard(), "erin") as client:
            await client.subscribe_resource(URI)
            assert len(modern.state.subscribers.get(URI, {})) == 1
            assert (await client.read_resource(URI)).contents
