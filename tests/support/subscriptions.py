"""What the resource-subscription tests share: the notifications a 2025-11-25 client hears
(Heard, legacy_client), and the fixture upstream's side of a subscription (who it holds,
its updates announced until one is heard, two subjects' listen streams kept apart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import Subscription
from mcp.shared.subscriptions import ResourceUpdated, ServerEvent

from tests.support.clients import structured
from tests.support.upstream import RunningUpstream, announce

WAIT_SECONDS = 20.0


class Heard:
    """A client's message handler: every notification heard, and waits for the next ones."""

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

    def logs(self) -> int:
        return sum(isinstance(n, types.LoggingMessageNotification) for n in self.notifications)

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while not check():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def legacy_client(url: str, heard: Heard, *, bearer: str | None = None) -> AsyncIterator[Client]:
    """A 2025-11-25 client whose notifications `heard` records (its GET stream included)."""
    headers = {} if bearer is None else {"Authorization": f"Bearer {bearer}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", message_handler=heard) as client,
    ):
        yield client


async def until_subscribed(
    upstream: RunningUpstream, uri: str, count: int, *, wait_seconds: float = WAIT_SECONDS
) -> None:
    """Until the upstream holds `count` subscriptions to `uri`."""
    async with asyncio.timeout(wait_seconds):
        while len(upstream.state.subscribers.get(uri, {})) != count:
            await asyncio.sleep(0.05)


async def announce_until_heard(upstream: RunningUpstream, uri: str, heard: Heard) -> None:
    """The GET stream opens beside the first requests: announce until one update arrives."""
    async with asyncio.timeout(WAIT_SECONDS):
        while uri not in heard.updates():
            await announce(upstream, uri)
            heard.changed.clear()
            try:
                async with asyncio.timeout(0.5):
                    await heard.changed.wait()
            except TimeoutError:
                continue


async def subscribe_and_hear(client: Client, upstream: RunningUpstream, uri: str, heard: Heard) -> None:
    """Subscribe `client` to the upstream's `uri`, held upstream, and hear its first update."""
    await client.subscribe_resource(uri)
    await until_subscribed(upstream, uri, 1)
    await announce_until_heard(upstream, uri, heard)


async def next_event(sub: Subscription, wait_seconds: float = WAIT_SECONDS) -> ServerEvent:
    return await asyncio.wait_for(anext(sub), wait_seconds)


async def listens_kept_apart(
    subscriber: Client,
    bystander: Client,
    bystander_uri: str,
    upstream: RunningUpstream,
    uri: str,
    *,
    wait_seconds: float = WAIT_SECONDS,
) -> None:
    """`subscriber` listens to the upstream's `uri`, `bystander` (another subject) to its own
    session `bystander_uri`: the upstream's update reaches the subscriber, and the bystander
    hears its own change with nothing of the subscriber's before it; the upstream drops the
    subscription once the stream ends."""
    async with (
        subscriber.listen(resource_subscriptions=[uri]) as subscriber_hears,
        bystander.listen(resource_subscriptions=[bystander_uri]) as bystander_hears,
    ):
        await until_subscribed(upstream, uri, 1, wait_seconds=wait_seconds)
        assert await announce(upstream, uri) == 1
        assert await next_event(subscriber_hears, wait_seconds) == ResourceUpdated(uri=uri)
        structured(await bystander.call_tool("note_set", {"key": "k", "value": 1}))
        # Its first event is its own: nothing of the subscriber's came before it.
        assert await next_event(bystander_hears, wait_seconds) == ResourceUpdated(uri=bystander_uri)
    await until_subscribed(upstream, uri, 0, wait_seconds=wait_seconds)  # the stream ended
