"""What the federation tests do again and again: tokens, registering the fixture upstream,
reading every event of the store opened with the gateway's keys."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.wiring.protection import open_sealer
from tests.support.clients import mcp_client
from tests.support.embedded import RunningGateway
from tests.support.tokens import good_token
from tests.support.upstream import RunningUpstream

FIXTURE_TOOLS = (
    "echo",
    "slow",
    "picture",
    "fails",
    "headers",
    "whoami",
    "grow",
    "mutable",
    "ask_model",
    "ask_user",
    "ask_roots",
    "ask_name",
    "needs_sampling",
)


def token(gw: RunningGateway, **kwargs: Any) -> str:
    return good_token(gw.runtime.settings, **kwargs)


async def register(
    gw: RunningGateway,
    upstream: RunningUpstream,
    *,
    session: str | None = None,
    as_token: str | None = None,
    **arguments: Any,
) -> types.CallToolResult:
    """register_server for the fixture upstream (name "fixture", prefix "fx" unless given)."""
    body = {"name": "fixture", "url": upstream.url, "prefix": "fx", **arguments}
    body = {k: v for k, v in body.items() if v is not None}
    async with mcp_client(gw.url, token=as_token or token(gw), session=session) as client:
        return await client.call_tool("register_server", body)


async def tool_names(gw: RunningGateway, *, session: str | None = None, **kwargs: Any) -> set[str]:
    async with mcp_client(gw.url, token=token(gw, **kwargs), session=session) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def opened_events(gw: RunningGateway) -> list[StoredEvent]:
    """Every stored event, its sealed fields opened where the key still exists."""
    settings = gw.runtime.settings
    store = await open_event_store(settings.store_url)
    sealer, keys = open_sealer(settings)
    try:
        mapper = EventMapper(sealer)
        return [await mapper.open(event) for event in await store.read_all(limit=10_000)]
    finally:
        await keys.close()
        await store.close()
