"""run_pipeline end to end: a pointer from blob_put flows into a registered HTTP tool, which
gets the document (never the pointer); mismatched pipelines are refused before anything runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.eventstore.ports import CommandKey
from tests.support.clients import mcp_client, open_session, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.pet_service import PetService, count_words_tool, pet_service


@pytest.fixture
async def pets() -> AsyncIterator[PetService]:
    async with pet_service() as service:
        yield service


@pytest.fixture
async def embedded(tmp_path: Path, pets: PetService) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path).model_copy(update={"registry_allowed_hosts": "127.0.0.1"})
    async with gateway(settings) as running:
        async with mcp_client(running.url) as client:
            structured(await client.call_tool("register_tools", {"tools": [count_words_tool(pets.base_url)]}))
        yield running


async def test_a_pointer_from_blob_put_flows_into_a_registered_tool_as_its_document(
    embedded: RunningGateway, pets: PetService
) -> None:
    session = await open_session(embedded.url)
    stages = [
        {"tool": "blob_put", "arguments": {"name": "memo.txt", "text": "four words right here"}},
        {"tool": "count_words"},
    ]
    async with mcp_client(embedded.url, session=session) as client:
        result = structured(await client.call_tool("run_pipeline", {"stages": stages}))
    assert result["output"] == {"words": 4}
    assert [(stage["tool"], stage["status"]) for stage in result["stages"]] == [
        ("blob_put", "ok"),
        ("count_words", "ok"),
    ]
    assert pets.received == ["four words right here"]
    store = embedded.runtime.store
    assert store is not None
    settings = embedded.runtime.settings
    stage = CommandKey(settings.local_tenant, settings.local_subject, result["stages"][1]["command_id"])
    recorded = await store.events_for_command(stage)
    assert recorded[-1].event_type == "ToolSucceeded"
    assert recorded[0].metadata.get("correlation_id") == result["pipeline_id"]


async def test_a_type_mismatch_is_refused_before_any_stage_runs(
    embedded: RunningGateway, pets: PetService
) -> None:
    store = embedded.runtime.store
    assert store is not None
    session = await open_session(embedded.url)
    before = await store.last_position()
    stages = [{"tool": "echo", "arguments": {"text": "not a pointer"}}, {"tool": "count_words"}]
    async with mcp_client(embedded.url, session=session) as client:
        result = await client.call_tool("run_pipeline", {"stages": stages})
    assert result.is_error
    assert "type mismatch: echo produces ['text'] but count_words accepts ['resource_link']" in text_of(
        result
    )
    written = await store.read_all(after_position=before)
    # Only the MCP client's own session opening and closing; no stage was called.
    assert {event.data.get("tool_name") for event in written if event.event_type == "ToolCalled"} <= {
        "session_open",
        "session_close",
    }
    assert pets.hits["words"] == 0


async def test_a_one_time_pointer_is_read_once_whether_by_resources_read_or_by_a_tool(
    embedded: RunningGateway, pets: PetService
) -> None:
    session = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session) as client:
        once = structured(await client.call_tool("blob_put", {"name": "a", "text": "x y", "one_time": True}))
        other = structured(
            await client.call_tool("blob_put", {"name": "b", "text": "x y z", "one_time": True})
        )
        await client.read_resource(once["uri"])
        after_read = await client.call_tool("count_words", {"document": once["uri"]})
        first = structured(await client.call_tool("count_words", {"document": other["uri"]}))
        second = await client.call_tool("count_words", {"document": other["uri"]})
    assert after_read.is_error
    assert "replayed" in text_of(after_read)
    assert first == {"words": 3}
    assert second.is_error
    assert "replayed" in text_of(second)
    assert pets.hits["words"] == 1


async def test_a_pointer_of_another_session_or_a_tampered_one_never_reaches_the_service(
    embedded: RunningGateway, pets: PetService
) -> None:
    mine, other = await open_session(embedded.url), await open_session(embedded.url)
    async with mcp_client(embedded.url, session=mine) as client:
        put = structured(await client.call_tool("blob_put", {"name": "a", "text": "private text"}))
        tampered = await client.call_tool("count_words", {"document": put["uri"].replace("sig=", "sig=A")})
    async with mcp_client(embedded.url, session=other) as client:
        foreign = await client.call_tool("count_words", {"document": put["uri"]})
    assert tampered.is_error
    assert "pointer_refused" in text_of(tampered)
    assert "tampered" in text_of(tampered)
    assert foreign.is_error
    assert "foreign_session" in text_of(foreign)
    assert pets.hits["words"] == 0
