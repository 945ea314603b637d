"""The whole path on real services: MCP API -> Kafka -> worker -> PostgreSQL -> Kafka -> Redis.

Each test gets its own topics (prefix), consumer groups, Redis key prefix and tenant, so
tests share the services but never each other's data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcp_ledger.domain.streams import session_stream
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from mcp_ledger.projections.sessions.view import SessionView
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, open_session, structured
from tests.support.processes import (
    LedgerProcess,
    isolated_env,
    ledger_processes,
    run_ledger,
    start_ledger,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> dict[str, str]:
    run_ledger(services_env, "migrate")
    return services_env


@pytest.fixture
def env(migrated: dict[str, str], unique: str) -> dict[str, str]:
    return {
        **isolated_env(migrated, unique),
        "LEDGER_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    with ledger_processes(env, tmp_path) as started:
        yield started


def _api(procs: list[LedgerProcess], env: dict[str, str], tmp: Path) -> LedgerProcess:
    api = start_ledger(procs, env, tmp, "api")
    api.wait_healthy()
    return api


async def _view_when(
    env: dict[str, str], tenant: str, session_id: str, ready: str, prefix: str | None = None
) -> SessionView:
    """The Redis view once it holds note `ready` (bounded wait: projection is asynchronous)."""
    views = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=prefix or env["LEDGER_STATE_PREFIX"])
    try:
        async with asyncio.timeout(20):
            while True:
                view = await views.get(tenant, session_id)
                if view is not None and ready in view.notes:
                    return view
                await asyncio.sleep(0.05)
    finally:
        await views.close()


async def test_a_tool_call_travels_through_kafka_postgres_and_redis(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    start_ledger(procs, env, tmp_path, "worker")
    api = _api(procs, env, tmp_path)
    session_id = await open_session(api.url)
    async with mcp_client(api.url, session=session_id) as client:
        await client.call_tool("note_set", {"key": "fruit", "value": "fig"})
        got = structured(await client.call_tool("note_get", {"key": "fruit"}))
    assert got == {"key": "fruit", "found": True, "value": "fig"}

    store = await open_event_store(env["LEDGER_STORE"])
    try:
        stream = await store.read_stream(session_stream(env["LEDGER_LOCAL_TENANT"], session_id))
    finally:
        await store.close()
    assert [e.event_type for e in stream][:4] == [
        "ToolCalled",
        "SessionOpened",
        "ToolSucceeded",
        "ToolCalled",
    ]
    view = await _view_when(env, env["LEDGER_LOCAL_TENANT"], session_id, "fruit")
    assert view.notes == {"fruit": "fig"}


async def test_a_second_api_replica_serves_a_session_created_through_the_first(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    start_ledger(procs, env, tmp_path, "worker")
    first, second = _api(procs, env, tmp_path), _api(procs, env, tmp_path)
    session_id = await open_session(first.url, mode="2026-07-28")
    async with mcp_client(first.url, session=session_id) as client:
        await client.call_tool("note_set", {"key": "where", "value": "first"})
    async with mcp_client(second.url, session=session_id, mode="2026-07-28") as client:
        got = structured(await client.call_tool("note_get", {"key": "where"}))
        await _view_when(env, env["LEDGER_LOCAL_TENANT"], session_id, "where")
        resource = await client.read_resource(f"ledger://sessions/{session_id}")
    assert got["value"] == "first"
    assert '"where": "first"' in str(resource.contents[0])


async def test_a_killed_workers_command_is_picked_up_by_another_and_recorded_once(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    doomed = start_ledger(procs, env, tmp_path, "worker")
    api = _api(procs, env, tmp_path)
    async with mcp_client(api.url) as client:
        assert structured(await client.call_tool("echo", {"text": "warm"}))["text"] == "warm"
        call = asyncio.create_task(client.call_tool("sleep", {"ms": 3000}))
        await asyncio.to_thread(doomed.wait_for_output, ": sleep")
        survivor = start_ledger(procs, env, tmp_path, "worker")
        doomed.kill()
        result = await asyncio.wait_for(call, timeout=60)
    assert structured(result) == {"slept_ms": 3000}
    assert ": sleep" in survivor.output()

    store = await open_event_store(env["LEDGER_STORE"])
    try:
        events = [e for e in await store.read_all(limit=100_000) if e.data.get("tool_name") == "sleep"]
    finally:
        await store.close()
    mine = [e for e in events if e.metadata.get("tenant") == env["LEDGER_LOCAL_TENANT"]]
    assert [e.event_type for e in mine] == ["ToolCalled", "ToolSucceeded"]


async def test_a_projection_rebuilt_from_scratch_equals_the_live_one(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str
) -> None:
    start_ledger(procs, env, tmp_path, "worker")
    api = _api(procs, env, tmp_path)
    tenant = env["LEDGER_LOCAL_TENANT"]
    # The stateless era: no transport sessions, so exactly these three sessions exist.
    sessions = [await open_session(api.url, mode="2026-07-28") for _ in range(3)]
    for index, session_id in enumerate(sessions):
        async with mcp_client(api.url, session=session_id, mode="2026-07-28") as client:
            await client.call_tool("note_set", {"key": "n", "value": index})
            await client.call_tool("note_set", {"key": "done", "value": True})
            await client.call_tool("note_delete", {"key": "n"})
            await client.call_tool("note_set", {"key": "last", "value": index})
    for session_id in sessions:
        await _view_when(env, tenant, session_id, "last")

    rebuilt_prefix = f"rebuilt-{unique}:"
    run_ledger({**env, "LEDGER_STATE_PREFIX": rebuilt_prefix}, "projections", "rebuild")
    live = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=env["LEDGER_STATE_PREFIX"])
    rebuilt = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt_prefix)
    try:
        live_views, rebuilt_views = await live.all_views(tenant), await rebuilt.all_views(tenant)
    finally:
        await rebuilt.clear()
        await live.close()
        await rebuilt.close()
    assert len(live_views) == 3
    assert rebuilt_views == live_views


async def test_an_mcp_session_opened_on_one_replica_is_served_and_ended_on_another(
    procs: list[LedgerProcess], env: dict[str, str], tmp_path: Path
) -> None:
    start_ledger(procs, env, tmp_path, "worker")
    first, second = _api(procs, env, tmp_path), _api(procs, env, tmp_path)
    async with httpx.AsyncClient(timeout=30) as http:
        session_id = (await http.post(first.url, json=INITIALIZE, headers=JSON_RPC_HEADERS)).headers[
            "mcp-session-id"
        ]
        on_session = {**JSON_RPC_HEADERS, "mcp-session-id": session_id}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "blob_put", "arguments": {"name": "r.txt", "text": "shared blob"}},
        }
        put = (await http.post(second.url, json=call, headers=on_session)).json()
        uri = put["result"]["structuredContent"]["uri"]
        read = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}
        got = (await http.post(first.url, json=read, headers=on_session)).json()
        deleted = await http.delete(second.url, headers=on_session)
        after = await http.post(first.url, json=read, headers=on_session)
    assert got["result"]["contents"][0]["text"] == "shared blob"
    assert deleted.status_code == 204
    assert after.status_code == 404
