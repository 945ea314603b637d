"""What the upstream tests on the real services do again and again: register the fixture
upstream for a tenant, and read back the outcomes the store recorded for its calls."""

from __future__ import annotations

from mcp_ledger.eventstore.sql import open_event_store
from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack
from tests.support.upstream import RunningUpstream

TERMINAL = {"ToolSucceeded", "ToolFailed", "ToolCallDenied"}


async def register_fixture(stack: DistributedStack, tenant: str, upstream: RunningUpstream) -> None:
    """register_server for the fixture upstream (prefix "fx"), by the tenant's admin."""
    admin = stack.token(tenant, "root", ("admin",))
    async with mcp_client(stack.urls[0], token=admin) as client:
        structured(
            await client.call_tool(
                "register_server", {"name": "fixture", "url": upstream.url, "prefix": "fx"}
            )
        )


async def recorded_outcomes(store_url: str, tenant: str, tool: str) -> dict[str, list[str]]:
    """Terminal event types per command of this tenant's calls of `tool`."""
    store = await open_event_store(store_url)
    try:
        events = await store.read_all(limit=100_000)
    finally:
        await store.close()
    outcomes: dict[str, list[str]] = {}
    for event in events:
        if event.metadata.get("tenant") != tenant or event.data.get("tool_name") != tool:
            continue
        if event.event_type in TERMINAL:
            outcomes.setdefault(str(event.data["command_id"]), []).append(event.event_type)
    return outcomes
