"""subscriptions/listen on the 2026-07-28 wire, with the SDK client, on a gateway with auth on.

A stream hears the state changes of its caller's own sessions, tagged with its subscription
id; a stream of another subject naming the same URI hears nothing of them. Each subject notes
in turn, so the second subject's first event proves the first subject's note never reached it.
A registration changing the tenant's tool set reaches the tenant's streams that asked for it;
a session's own tool set change reaches only a stream of that session's owner naming it; a new
session grows only its owner's resource list. A stream ends, gracefully, when its lifetime is
over.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp.client.subscriptions import Subscription
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent, ToolsListChanged

from mcp_ledger.mcp_api import listen
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.pet_service import pet_service
from tests.support.tokens import good_token

MODERN = "2026-07-28"
WAIT_SECONDS = 20.0


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


async def _session(gw: RunningGateway, token: str) -> str:
    async with mcp_client(gw.url, mode=MODERN, token=token) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def _note(gw: RunningGateway, token: str, session_id: str) -> None:
    async with mcp_client(gw.url, session=session_id, mode=MODERN, token=token) as client:
        structured(await client.call_tool("note_set", {"key": "k", "value": 1}))


async def _next(sub: Subscription) -> ServerEvent:
    return await asyncio.wait_for(anext(sub), WAIT_SECONDS)


async def test_a_listen_stream_hears_its_callers_own_session_change_and_no_one_elses(
    secured: RunningGateway,
) -> None:
    alice, bob = (good_token(secured.runtime.settings, sub=sub) for sub in ("alice", "bob"))
    alice_session, bob_session = await _session(secured, alice), await _session(secured, bob)
    alice_uri, bob_uri = f"ledger://sessions/{alice_session}", f"ledger://sessions/{bob_session}"
    async with (
        mcp_client(secured.url, mode=MODERN, token=alice) as alice_client,
        mcp_client(secured.url, mode=MODERN, token=bob) as bob_client,
        alice_client.listen(resource_subscriptions=[alice_uri]) as alice_hears,
        bob_client.listen(resource_subscriptions=[alice_uri, bob_uri]) as bob_hears,
    ):
        assert bob_hears.honored.resource_subscriptions == [alice_uri, bob_uri]
        await _note(secured, alice, alice_session)
        assert await _next(alice_hears) == ResourceUpdated(uri=alice_uri)
        await _note(secured, bob, bob_session)
        assert await _next(bob_hears) == ResourceUpdated(uri=bob_uri)


async def test_a_listen_stream_hears_the_tenants_tool_set_change(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path).model_copy(update={"registry_allowed_hosts": "127.0.0.1"})
    async with (
        pet_service() as pets,
        gateway(settings) as local,
        mcp_client(local.url, mode=MODERN) as client,
        client.listen(tools_list_changed=True) as hears,
    ):
        structured(await client.call_tool("import_openapi", {"url": f"{pets.base_url}/openapi.json"}))
        assert await _next(hears) == ToolsListChanged()


def _shop(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
    return f"sqlite+aiosqlite:///{path}"


async def test_a_sessions_tool_set_change_reaches_only_its_owners_stream_naming_it(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"data_source_sqlite_dir": tmp_path / "data"}
    )
    async with gateway(settings) as secured:
        alice, bob = (good_token(settings, sub=sub) for sub in ("alice", "bob"))
        alice_session, bob_session = await _session(secured, alice), await _session(secured, bob)
        bob_uri = f"ledger://sessions/{bob_session}"
        async with (
            mcp_client(secured.url, session=alice_session, mode=MODERN, token=alice) as alice_client,
            mcp_client(secured.url, session=alice_session, mode=MODERN, token=bob) as bob_client,
            alice_client.listen(tools_list_changed=True) as alice_hears,
            bob_client.listen(tools_list_changed=True, resource_subscriptions=[bob_uri]) as bob_hears,
        ):
            dsn = _shop(tmp_path / "data" / "shop.db")
            structured(await alice_client.call_tool("connect_data_source", {"name": "shop", "dsn": dsn}))
            assert await _next(alice_hears) == ToolsListChanged()
            await _note(secured, bob, bob_session)
            assert await _next(bob_hears) == ResourceUpdated(uri=bob_uri)


async def test_a_listen_stream_ends_with_its_result_when_its_lifetime_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listen, "MAX_LISTEN_SECONDS", 0.5)
    async with (
        gateway(embedded_settings(tmp_path)) as local,
        mcp_client(local.url, mode=MODERN) as client,
        client.listen(tools_list_changed=True) as hears,
    ):
        async with asyncio.timeout(WAIT_SECONDS):
            heard = [event async for event in hears]  # a graceful close ends the iteration
    assert heard == []


async def test_a_new_session_changes_only_its_owners_resource_list(secured: RunningGateway) -> None:
    alice, bob = (good_token(secured.runtime.settings, sub=sub) for sub in ("alice", "bob"))
    bob_session = await _session(secured, bob)
    bob_uri = f"ledger://sessions/{bob_session}"
    async with (
        mcp_client(secured.url, mode=MODERN, token=alice) as alice_client,
        mcp_client(secured.url, mode=MODERN, token=bob) as bob_client,
        alice_client.listen(resources_list_changed=True) as alice_hears,
        bob_client.listen(resources_list_changed=True, resource_subscriptions=[bob_uri]) as bob_hears,
    ):
        await _session(secured, alice)
        assert await _next(alice_hears) == ResourcesListChanged()
        await _note(secured, bob, bob_session)
        assert await _next(bob_hears) == ResourceUpdated(uri=bob_uri)
