"""Registered tools end to end: the official MCP client, an embedded gateway, a real HTTP
service and a real SQLite database, all on this machine."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, open_session, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.pet_service import PetService, pet_service

PET_TOOLS = {"getPet", "listPets", "create_pet", "flakyGet", "flakyPost"}


@pytest.fixture
async def pets() -> AsyncIterator[PetService]:
    async with pet_service() as service:
        yield service


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1", "data_source_sqlite_dir": tmp_path / "data"}
    )
    async with gateway(settings) as running_gateway:
        yield running_gateway


async def _import(url: str, pets: PetService) -> dict[str, Any]:
    async with mcp_client(url) as client:
        return structured(await client.call_tool("import_openapi", {"url": f"{pets.base_url}/openapi.json"}))


async def test_imported_operations_are_listed_and_calls_reach_the_service(
    embedded: RunningGateway, pets: PetService
) -> None:
    imported = await _import(embedded.url, pets)
    assert set(imported["registered"]) == PET_TOOLS
    async with mcp_client(embedded.url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        pet = structured(await client.call_tool("getPet", {"petId": 1}))
        listed = structured(await client.call_tool("listPets", {"limit": 5}))
        created = await client.call_tool("create_pet", {"body": {"id": 7, "name": "Fig"}})
    assert set(tools) >= PET_TOOLS
    assert tools["getPet"].input_schema["required"] == ["petId"]
    assert tools["getPet"].output_schema is not None
    assert tools["getPet"].annotations is not None
    assert tools["getPet"].annotations.read_only_hint
    assert pet == {"id": 1, "name": "Rex"}
    assert listed == {"result": [{"id": 1, "name": "Rex"}]}
    assert structured(created) == {"id": 7, "name": "Fig"}
    assert pets.hits["get_pet"] == 1
    assert pets.pets[7] == {"id": 7, "name": "Fig"}


async def test_a_get_answered_503_is_retried_and_succeeds(embedded: RunningGateway, pets: PetService) -> None:
    await _import(embedded.url, pets)
    async with mcp_client(embedded.url) as client:
        result = structured(await client.call_tool("flakyGet", {}))
    assert result == {"ok": True, "attempt": 2}
    assert pets.hits["flaky"] == 2


async def test_a_post_answered_503_is_not_retried(embedded: RunningGateway, pets: PetService) -> None:
    await _import(embedded.url, pets)
    async with mcp_client(embedded.url) as client:
        result = await client.call_tool("flakyPost", {})
    assert result.is_error
    assert "HTTP 503" in text_of(result)
    assert pets.hits["flaky_post"] == 1


async def test_an_openapi_url_off_the_allowlist_is_refused_and_nothing_is_registered(
    embedded: RunningGateway,
) -> None:
    async with mcp_client(embedded.url) as client:
        result = await client.call_tool("import_openapi", {"url": "http://169.254.169.254/openapi.json"})
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert result.is_error
    assert "registration_refused" in text_of(result)
    assert not names & PET_TOOLS


def _shop(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total NUMERIC
            );
            INSERT INTO customers VALUES (1, 'Ada'), (2, 'Brian');
            INSERT INTO orders VALUES (10, 1, 12.5), (11, 1, 3), (12, 2, 8);
            """
        )
    return f"sqlite+aiosqlite:///{path}"


async def test_a_data_source_gives_tools_to_its_session_only(
    embedded: RunningGateway, tmp_path: Path
) -> None:
    dsn = _shop(tmp_path / "data" / "shop.db")
    mine, other = await open_session(embedded.url), await open_session(embedded.url)
    async with mcp_client(embedded.url, session=mine) as client:
        connected = structured(await client.call_tool("connect_data_source", {"name": "shop", "dsn": dsn}))
        my_tools = {tool.name for tool in (await client.list_tools()).tools}
        ada = structured(await client.call_tool("shop_customers_read", {"id": 1}))
        orders = structured(await client.call_tool("shop_customers_orders_by_customer_id", {"id": 1}))
        inserted = structured(
            await client.call_tool("shop_customers_insert", {"values": {"id": 3, "name": "Cy"}})
        )
        queried = structured(await client.call_tool("shop_customers_query", {"where": {"name": "Cy"}}))
    async with mcp_client(embedded.url, session=other) as client:
        other_tools = {tool.name for tool in (await client.list_tools()).tools}
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("shop_customers_read", {"id": 1})
    assert connected["scope"] == "session"
    assert {"shop_customers_read", "shop_orders_query", "shop_customers_orders_by_customer_id"} <= my_tools
    assert not {name for name in other_tools if name.startswith("shop_")}
    assert ada == {"found": True, "row": {"id": 1, "name": "Ada"}}
    assert [row["id"] for row in orders["rows"]] == [10, 11]
    assert inserted == {"inserted": 1}
    assert queried == {"rows": [{"id": 3, "name": "Cy"}]}


async def test_sql_values_are_bound_parameters_never_sql(embedded: RunningGateway, tmp_path: Path) -> None:
    dsn = _shop(tmp_path / "data" / "shop.db")
    session = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session) as client:
        await client.call_tool("connect_data_source", {"name": "shop", "dsn": dsn})
        injected = structured(
            await client.call_tool("shop_customers_query", {"where": {"name": "x' OR '1'='1"}})
        )
        await client.call_tool("shop_customers_delete", {"id": "1 OR 1=1"})
    assert injected == {"rows": []}
    with sqlite3.connect(tmp_path / "data" / "shop.db") as db:
        assert db.execute("SELECT count(*) FROM customers").fetchone() == (2,)


async def test_a_database_outside_the_allowed_directory_is_refused(
    embedded: RunningGateway, tmp_path: Path
) -> None:
    dsn = _shop(tmp_path / "elsewhere" / "shop.db")
    session = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session) as client:
        result = await client.call_tool("connect_data_source", {"name": "shop", "dsn": dsn})
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert result.is_error
    assert "not in the allowed directory" in text_of(result)
    assert not {name for name in names if name.startswith("shop_")}


async def test_the_http_registration_api_registers_and_lists_capabilities(
    embedded: RunningGateway, pets: PetService
) -> None:
    base = embedded.url.removesuffix("/mcp")
    tool: dict[str, Any] = {
        "name": "pet_by_id",
        "description": "One pet.",
        "input_schema": {
            "type": "object",
            "properties": {"petId": {"type": "integer"}},
            "required": ["petId"],
        },
        "binding": {
            "kind": "http",
            "method": "GET",
            "base_url": pets.base_url,
            "path": "/pets/{petId}",
            "parameters": {"petId": "path"},
        },
    }
    ssrf = {**tool, "name": "meta", "binding": {**tool["binding"], "base_url": "http://169.254.169.254"}}
    intranet = {**tool, "name": "intranet", "binding": {**tool["binding"], "base_url": "http://10.9.9.9"}}
    async with httpx.AsyncClient(timeout=30) as http:
        created = await http.post(f"{base}/v1/tools", json={"tools": [tool]})
        invalid = await http.post(f"{base}/v1/tools", json={"tools": [{**tool, "input_schema": {"type": 5}}]})
        metadata = await http.post(f"{base}/v1/tools", json={"tools": [ssrf]})
        off_allowlist = await http.post(f"{base}/v1/tools", json={"tools": [intranet]})
        listed = (await http.get(f"{base}/v1/capabilities")).json()
    async with mcp_client(embedded.url) as client:
        pet = structured(await client.call_tool("pet_by_id", {"petId": 1}))
    assert created.status_code == 201, created.text
    assert created.json()["registered"] == ["pet_by_id"]
    assert invalid.status_code == 400
    assert "invalid JSON Schema" in invalid.text
    assert metadata.status_code == 400
    assert "link-local or metadata" in metadata.text
    assert off_allowlist.status_code == 422
    assert "not on the gateway's allowlist" in off_allowlist.text
    names = {entry["name"] for entry in listed["tools"]}
    assert "pet_by_id" in names
    assert not {"meta", "intranet"} & names
    assert pet == {"id": 1, "name": "Rex"}


async def test_a_sessions_get_stream_hears_tools_list_changed_when_its_tool_set_changes(
    embedded: RunningGateway, tmp_path: Path
) -> None:
    dsn = _shop(tmp_path / "data" / "shop.db")
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "connect_data_source", "arguments": {"name": "shop", "dsn": dsn}},
    }
    async with httpx.AsyncClient(timeout=10) as http:
        session_id = (await http.post(embedded.url, json=INITIALIZE, headers=JSON_RPC_HEADERS)).headers[
            "mcp-session-id"
        ]
        on_session = {**JSON_RPC_HEADERS, "mcp-session-id": session_id}
        async with http.stream(
            "GET", embedded.url, headers={**on_session, "accept": "text/event-stream"}
        ) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == ": listening"
            connected = await http.post(embedded.url, json=call, headers=on_session)
            heard = None
            async for line in lines:
                if line.startswith("data:") and "list_changed" in line:
                    heard = line
                    break
    assert connected.json()["result"]["structuredContent"]["scope"] == "session"
    assert heard is not None
    assert '"notifications/tools/list_changed"' in heard
