"""Erasure proof on the embedded gateway: a marker written through MCP (a note, a call, a
blob, a plan's output), erased through the admin endpoint, is found nowhere in the clear in
any file of the data directory (the event store with its -wal and -shm files, the key table,
the blob files; tests/support/files.py) and nothing of the subject opens any more: not their
events, not their blob's pointer, not their MCP session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client, MCPError

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.wiring.protection import open_sealer
from tests.support.clients import mcp_client, open_session, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.files import files_containing, files_under


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running_gateway:
        yield running_gateway


async def test_an_erased_marker_is_nowhere_in_the_clear_and_nothing_opens(
    embedded: RunningGateway, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    session_id = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session_id) as client:
        await client.call_tool("note_set", {"key": "secret", "value": marker})
        assert structured(await client.call_tool("echo", {"text": marker}))["text"] == marker
        pointer = await _blob_pointer(client, marker)
        assert _text(await client.read_resource(pointer)) == marker
        plan = {"plan_id": "p1", "tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": marker}}]}
        await client.call_tool("create_plan", {"plan": plan})
        done = structured(await client.call_tool("execute_plan", {"plan_id": "p1", "wait_seconds": 10}))
        assert done["tasks"]["a"]["output"] == {"text": marker}
    settings = embedded.runtime.settings
    views, plan_views = embedded.runtime.views, embedded.runtime.plan_views
    assert marker in repr(await views.all_views())  # the read models hold it in the clear…
    plan_view = plan_view_id(settings.local_subject, "p1")
    assert marker in repr(await plan_views.get(settings.local_tenant, plan_view))
    # The search sees what was just written, in the WAL, and the blobs' directory is there…
    assert tmp_path / "ledger.db-wal" in files_containing(tmp_path, session_id)
    assert [p.name for p in files_under(tmp_path / "blobs")]
    assert files_containing(tmp_path, marker) == []  # …but the store and the blob files never held it

    async with mcp_client(embedded.url) as live:  # a 2025-11-25 session open during the erasure
        await live.call_tool("echo", {"text": "still here"})
        record = await _erase(embedded.url, settings.local_subject)
        with pytest.raises(MCPError, match="session not found"):
            await live.call_tool("echo", {"text": "after"})
    assert (record["status"], record["keys_destroyed"]) == ("completed", 1)
    # the explicit session plus the ones the 2025-11-25 clients got at initialize
    assert record["purged"]["session_views"] >= 1
    assert (record["purged"]["blobs"], record["purged"]["plan_views"]) == (1, 1)
    assert record["purged"]["transport_sessions"] == 1

    assert marker not in repr(await views.all_views())
    assert await plan_views.get(settings.local_tenant, plan_view) is None
    assert files_containing(tmp_path, marker) == []
    async with mcp_client(embedded.url, session=session_id) as client:
        with pytest.raises(MCPError, match="was erased"):
            await client.read_resource(pointer)
    store = await open_event_store(settings.store_url)
    sealer, keys = open_sealer(settings)
    try:
        mapper = EventMapper(sealer)
        opened = [await mapper.open(event) for event in await store.read_all(limit=10_000)]
    finally:
        await keys.close()
        await store.close()
    assert marker not in repr([event.data for event in opened])
    assert {"$erased": True} in [event.data.get("value") for event in opened]


async def _blob_pointer(client: Client, text: str) -> str:
    result = await client.call_tool("blob_put", {"name": f"notes {text}", "text": text})
    links = [block for block in result.content if isinstance(block, types.ResourceLink)]
    assert len(links) == 1
    return str(links[0].uri)


def _text(result: types.ReadResourceResult) -> str:
    contents = result.contents[0]
    assert isinstance(contents, types.TextResourceContents)
    return contents.text


async def _erase(url: str, subject: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{url.removesuffix('/mcp')}/admin/erasures", json={"subject": subject})
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert isinstance(record, dict)
    return record
