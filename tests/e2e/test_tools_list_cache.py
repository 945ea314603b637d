"""The tools/list cache on the embedded gateway with auth on (mcp_api/tools/listing_cache.py):
each listing below is asked right after another caller's (or the same caller's before a change)
was cached, so a key missing a part, or a freshness that does not move, serves the wrong list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import JSON_RPC_HEADERS, mcp_client, structured
from tests.support.stacks import EmbeddedStack, embedded_stack

MODERN = "2026-07-28"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[EmbeddedStack]:
    async with embedded_stack(tmp_path) as running:
        yield running


def _tool(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "a registered tool",
        "input_schema": {"type": "object"},
        "binding": {"kind": "http", "method": "GET", "base_url": "http://127.0.0.1:9", "path": "/"},
        **extra,
    }


async def _names(
    stack: EmbeddedStack, token: str, *, session: str | None = None, mode: str = MODERN
) -> set[str]:
    async with mcp_client(stack.urls[0], token=token, session=session, mode=mode) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def _call(
    stack: EmbeddedStack, token: str, tool: str, arguments: dict[str, Any], session: str | None = None
) -> Any:
    async with mcp_client(stack.urls[0], token=token, session=session) as client:
        return structured(await client.call_tool(tool, arguments))


def _raw_listing(request_id: int | str) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": {"_meta": meta}}


async def test_a_registration_and_a_removal_change_the_next_listing(stack: EmbeddedStack) -> None:
    admin = stack.token("acme", "bob", ("admin",))
    assert "weather" not in await _names(stack, admin)
    assert stack.running.runtime.listings is not None
    assert len(stack.running.runtime.listings) == 1
    await _call(stack, admin, "register_tools", {"tools": [_tool("weather")]})
    assert "weather" in await _names(stack, admin)
    await _call(stack, admin, "remove_tool", {"name": "weather"})
    assert "weather" not in await _names(stack, admin)


async def test_a_cached_answer_is_the_sdks_answer_with_the_requests_id(stack: EmbeddedStack) -> None:
    headers = {**JSON_RPC_HEADERS, "authorization": f"Bearer {stack.token('acme', 'bob', ('admin',))}"}
    headers |= {"mcp-protocol-version": MODERN, "mcp-method": "tools/list"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        first = await http.post(stack.urls[0], json=_raw_listing(1))
        again = await http.post(stack.urls[0], json=_raw_listing("second"))
    assert first.status_code == again.status_code == 200
    assert again.content == first.content.replace(b'"id":1,', b'"id":"second",', 1)
    assert int(again.headers["content-length"]) == len(again.content)
    assert again.headers["content-type"] == "application/json"


async def test_a_role_never_gets_the_listing_cached_for_another(stack: EmbeddedStack) -> None:
    admin = stack.token("acme", "bob", ("admin",))
    await _call(stack, admin, "register_tools", {"tools": [_tool("payroll", minimum_role="admin")]})
    assert "payroll" in await _names(stack, admin)
    # Same tenant and subject, fewer roles: the role set alone tells the two listings apart.
    assert "payroll" not in await _names(stack, stack.token("acme", "bob", ("viewer",)))


async def test_another_tenant_never_gets_the_listing_cached_for_this_one(stack: EmbeddedStack) -> None:
    # One registration in each tenant: their registries are at the same version.
    await _call(
        stack, stack.token("acme", "bob", ("admin",)), "register_tools", {"tools": [_tool("acme_crm")]}
    )
    await _call(
        stack, stack.token("globex", "carol", ("admin",)), "register_tools", {"tools": [_tool("gx_crm")]}
    )
    assert "acme_crm" in await _names(stack, stack.token("acme", "alice", ("admin",)))
    # The namesake in another tenant, same roles.
    names = await _names(stack, stack.token("globex", "alice", ("admin",)))
    assert "gx_crm" in names
    assert "acme_crm" not in names


async def test_a_sessions_tools_stay_in_that_session_whoever_names_it(stack: EmbeddedStack) -> None:
    alice = stack.token("acme", "alice", ("admin",))
    own = (await _call(stack, alice, "session_open", {}))["session_id"]
    other = (await _call(stack, alice, "session_open", {}))["session_id"]
    await _call(
        stack, alice, "register_tools", {"tools": [_tool("scratch")], "scope": "session"}, session=own
    )
    # Both session registries at the same version, so only the session tells them apart.
    await _call(
        stack, alice, "register_tools", {"tools": [_tool("draft")], "scope": "session"}, session=other
    )
    assert "scratch" in await _names(stack, alice, session=own)
    assert {"draft"} == {"scratch", "draft"} & await _names(stack, alice, session=other)
    assert "scratch" not in await _names(stack, alice)
    # Another subject naming her session gets the tenant's listing, not hers.
    assert "scratch" not in await _names(stack, stack.token("acme", "bob", ("admin",)), session=own)


async def test_a_legacy_session_relists_from_the_cache_and_sees_changes(stack: EmbeddedStack) -> None:
    admin = stack.token("acme", "bob", ("admin",))
    async with mcp_client(stack.urls[0], token=admin, mode="legacy") as client:
        before = {tool.name for tool in (await client.list_tools()).tools}
        structured(await client.call_tool("register_tools", {"tools": [_tool("weather")]}))
        after = {tool.name for tool in (await client.list_tools()).tools}
        again = {tool.name for tool in (await client.list_tools()).tools}
    assert "weather" not in before
    assert after == again == before | {"weather"}


async def test_each_protocol_era_gets_its_own_answer(stack: EmbeddedStack) -> None:
    admin = stack.token("acme", "bob", ("admin",))
    await _call(stack, admin, "register_tools", {"tools": [_tool("weather")]})
    headers = {**JSON_RPC_HEADERS, "authorization": f"Bearer {admin}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        modern = await http.post(
            stack.urls[0],
            json=_raw_listing(1),
            headers={"mcp-protocol-version": MODERN, "mcp-method": "tools/list"},
        )
        legacy = await http.post(
            stack.urls[0],
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"mcp-protocol-version": "2025-11-25"},
        )
    assert modern.json()["result"]["resultType"] == "complete"
    assert "resultType" not in legacy.json()["result"]
    assert "weather" in {tool["name"] for tool in legacy.json()["result"]["tools"]}


async def test_an_erasure_drops_the_subjects_cached_listings(stack: EmbeddedStack) -> None:
    listings = stack.running.runtime.listings
    assert listings is not None
    await _names(stack, stack.token("acme", "alice", ("operator",)))
    await _names(stack, stack.token("acme", "bob", ("admin",)))
    assert listings.holds("acme", "alice")
    assert listings.holds("acme", "bob")
    await stack.erase("acme", "alice")
    assert not listings.holds("acme", "alice")
    assert listings.holds("acme", "bob")
