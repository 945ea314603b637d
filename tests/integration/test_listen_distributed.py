"""subscriptions/listen is served by any API replica: a stream open on one replica hears a
session's change made through another (every replica's hub is fed by ledger.events)."""

from __future__ import annotations

import asyncio

import pytest
from mcp.shared.subscriptions import ResourceUpdated

from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack

pytestmark = pytest.mark.integration

MODERN = "2026-07-28"


async def test_a_listen_stream_on_one_replica_hears_a_change_made_through_another(
    shared_distributed_stack: DistributedStack, unique: str
) -> None:
    stack = shared_distributed_stack
    listening, changing = stack.urls[0], stack.urls[1]
    token = stack.token(f"tenant-{unique}", "alice", ("operator",))
    async with mcp_client(changing, mode=MODERN, token=token) as client:
        session_id = str(structured(await client.call_tool("session_open", {}))["session_id"])
    uri = f"ledger://sessions/{session_id}"
    async with (
        mcp_client(listening, mode=MODERN, token=token) as client,
        client.listen(resource_subscriptions=[uri]) as hears,
        mcp_client(changing, session=session_id, mode=MODERN, token=token) as other,
    ):
        structured(await other.call_tool("note_set", {"key": "k", "value": 1}))
        assert await asyncio.wait_for(anext(hears), 60) == ResourceUpdated(uri=uri)
