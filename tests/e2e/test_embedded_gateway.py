"""The embedded gateway over real HTTP with the official MCP client, in both protocol eras."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.settings import Settings
from tests.support.clients import mcp_client, open_session, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway

ERAS = ["legacy", "2026-07-28"]


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running_gateway:
        yield running_gateway


async def _stored_event_count(settings: Settings) -> int:
    store = await open_event_store(settings.store_url)
    try:
        return await store.last_position()
    finally:
        await store.close()


@pytest.mark.parametrize("mode", ERAS)
async def test_echo_returns_text_and_structured_content(embedded: RunningGateway, mode: str) -> None:
    async with mcp_client(embedded.url, mode=mode) as client:
        result = await client.call_tool("echo", {"text": "hello ledger"})
    assert text_of(result) == "hello ledger"
    assert structured(result) == {"text": "hello ledger"}


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_shows_builtin_tools_with_schemas(embedded: RunningGateway, mode: str) -> None:
    async with mcp_client(embedded.url, mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"echo", "session_open", "note_set", "note_get", "note_list"} <= set(tools)
    assert tools["note_set"].input_schema["required"] == ["key", "value"]
    assert tools["echo"].output_schema is not None


@pytest.mark.parametrize("mode", ERAS)
async def test_notes_written_in_a_session_are_read_back_in_later_requests(
    embedded: RunningGateway, mode: str
) -> None:
    session_id = await open_session(embedded.url, mode)
    async with mcp_client(embedded.url, session=session_id, mode=mode) as client:
        await client.call_tool("note_set", {"key": "city", "value": {"name": "Lyon"}})
    async with mcp_client(embedded.url, session=session_id, mode=mode) as client:
        got = structured(await client.call_tool("note_get", {"key": "city"}))
        missing = structured(await client.call_tool("note_get", {"key": "nope"}))
    assert got == {"key": "city", "found": True, "value": {"name": "Lyon"}}
    assert missing == {"key": "nope", "found": False}


async def test_session_state_is_a_resource_served_from_the_projection(embedded: RunningGateway) -> None:
    session_id = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session_id) as client:
        await client.call_tool("note_set", {"key": "k", "value": 1})
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        assert f"ledger://sessions/{session_id}" in uris
        read = await client.read_resource(f"ledger://sessions/{session_id}")
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert '"k": 1' in content.text


async def test_an_unknown_session_is_refused_without_revealing_anything(embedded: RunningGateway) -> None:
    async with mcp_client(embedded.url, session="not-a-real-session-id") as client:
        result = await client.call_tool("note_get", {"key": "k"})
    assert result.is_error
    assert text_of(result) == "unknown_session: unknown session"


async def test_note_tools_without_a_session_say_how_to_get_one(embedded: RunningGateway) -> None:
    async with mcp_client(embedded.url, mode="2026-07-28") as client:
        result = await client.call_tool("note_get", {"key": "k"})
    assert result.is_error
    assert "session_open" in text_of(result)


@pytest.mark.parametrize("mode", ERAS)
async def test_an_unknown_tool_is_a_clear_protocol_error_and_writes_nothing(
    embedded: RunningGateway, mode: str
) -> None:
    async with mcp_client(embedded.url, mode=mode) as client:
        before = await _stored_event_count(embedded.runtime.settings)
        with pytest.raises(MCPError, match="Unknown tool: rm_rf"):
            await client.call_tool("rm_rf", {})
        assert await _stored_event_count(embedded.runtime.settings) == before


@pytest.mark.parametrize("mode", ERAS)
async def test_arguments_against_the_schema_get_a_readable_error_and_write_nothing(
    embedded: RunningGateway, mode: str
) -> None:
    async with mcp_client(embedded.url, mode=mode) as client:
        before = await _stored_event_count(embedded.runtime.settings)
        result = await client.call_tool("echo", {"text": 42})
        assert await _stored_event_count(embedded.runtime.settings) == before
    assert result.is_error
    assert text_of(result) == "invalid arguments at text: 42 is not of type 'string'"


async def test_oversized_arguments_are_refused_before_anything_is_written(embedded: RunningGateway) -> None:
    async with mcp_client(embedded.url) as client:
        before = await _stored_event_count(embedded.runtime.settings)
        with pytest.raises(MCPError, match="the limit is 65536"):
            await client.call_tool("echo", {"text": "x" * 70_000})
        assert await _stored_event_count(embedded.runtime.settings) == before


async def test_a_2025_client_gets_a_fresh_server_side_session_at_initialize(embedded: RunningGateway) -> None:
    async with mcp_client(embedded.url) as client:
        await client.call_tool("note_set", {"key": "k", "value": "v"})
        got = structured(await client.call_tool("note_get", {"key": "k"}))
    async with mcp_client(embedded.url) as client:
        again = structured(await client.call_tool("note_get", {"key": "k"}))
    assert got["value"] == "v"
    assert again == {"key": "k", "found": False}


async def test_a_malformed_session_header_is_refused(embedded: RunningGateway) -> None:
    async with mcp_client(embedded.url, session="bad header!") as client:
        with pytest.raises(MCPError, match="Ledger-Session header"):
            await client.call_tool("echo", {"text": "x"})


async def test_every_call_is_durably_stored_with_its_outcome(embedded: RunningGateway) -> None:
    async with mcp_client(embedded.url) as client:
        await client.call_tool("echo", {"text": "stored"})
    store = await open_event_store(embedded.runtime.settings.store_url)
    try:
        events = await store.read_all()
    finally:
        await store.close()
    kinds = [(e.event_type, e.data.get("tool_name")) for e in events]
    assert ("ToolCalled", "echo") in kinds
    assert ("ToolSucceeded", "echo") in kinds


async def test_state_survives_a_restart_of_the_embedded_gateway(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    async with gateway(settings) as first:
        session_id = await open_session(first.url)
        async with mcp_client(first.url, session=session_id) as client:
            await client.call_tool("note_set", {"key": "kept", "value": "yes"})
    async with gateway(settings) as second, mcp_client(second.url, session=session_id) as client:
        got = structured(await client.call_tool("note_get", {"key": "kept"}))
        view = await second.runtime.views.get(settings.local_tenant, session_id)
    assert got["value"] == "yes"
    assert view is not None
    assert view.notes == {"kept": "yes"}
