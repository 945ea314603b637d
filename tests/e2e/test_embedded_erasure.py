"""Erasure proof on the embedded gateway: a marker written through MCP, erased through the
admin endpoint, is found nowhere in the clear and nothing of the subject opens any more."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.protection import open_sealer
from tests.support.clients import mcp_client, open_session, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running_gateway:
        yield running_gateway


def _files_holding(directory: Path, marker: bytes) -> list[str]:
    return [str(path) for path in directory.rglob("*") if path.is_file() and marker in path.read_bytes()]


async def test_an_erased_marker_is_nowhere_in_the_clear_and_nothing_opens(
    embedded: RunningGateway, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    session_id = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session_id) as client:
        await client.call_tool("note_set", {"key": "secret", "value": marker})
        assert structured(await client.call_tool("echo", {"text": marker}))["text"] == marker
    settings = embedded.runtime.settings
    views = embedded.runtime.views
    assert marker in repr(await views.all_views())  # the read model holds it in the clear…
    assert _files_holding(tmp_path, marker.encode()) == []  # …the store never did

    base = embedded.url.removesuffix("/mcp")
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{base}/admin/erasures", json={"subject": settings.local_subject})
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert (record["status"], record["keys_destroyed"]) == ("completed", 1)
    # the explicit session plus the ones the 2025-11-25 clients got at initialize
    assert record["purged"]["session_views"] >= 1
    assert record["purged"]["blobs"] == 0

    assert marker not in repr(await views.all_views())
    assert _files_holding(tmp_path, marker.encode()) == []
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
