"""Upstream MCP servers on the real services (Kafka, PostgreSQL, Redis), API replicas and
workers as processes, auth on: a call recorded with exactly one outcome, the upstream dying
mid-call and coming back, its sessions expiring (404), and a worker killed mid-call leaving
exactly one recorded outcome (fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import mcp_types as types
import pytest

from tests.integration.federation.recorded import recorded_outcomes, register_fixture
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, structured, text_of
from tests.support.distributed import DistributedStack, distributed_stack
from tests.support.upstream import RunningUpstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


async def _session(url: str, token: str) -> str:
    async with mcp_client(url, token=token) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def _slow_call_under_way(
    url: str, user: str, session: str, upstream: RunningUpstream
) -> asyncio.Task[types.CallToolResult]:
    """A call of fx_slow held by the upstream (until its release), once the upstream has it."""

    async def slow() -> types.CallToolResult:
        async with mcp_client(url, token=user, session=session) as client:
            return await client.call_tool("fx_slow", {"steps": 1, "wait_for_release": True})

    call = asyncio.create_task(slow())
    async with asyncio.timeout(60):
        while upstream.state.calls["slow"] == 0:
            await asyncio.sleep(0.05)
    return call


async def test_an_upstream_call_through_another_replica_is_recorded_with_exactly_one_outcome(
    stack: DistributedStack, tenant: str, upstream: RunningUpstream
) -> None:
    await register_fixture(stack, tenant, upstream)
    user = stack.token(tenant, "bob", ("viewer",))
    async with mcp_client(stack.urls[-1], token=user) as client:
        assert text_of(await client.call_tool("fx_echo", {"text": "via kafka"})) == "via kafka"
    assert list((await recorded_outcomes(stack.store_url, tenant, "fx_echo")).values()) == [["ToolSucceeded"]]
    assert upstream.state.calls["echo"] == 1


async def test_an_upstream_killed_mid_call_gives_a_clear_error_then_sessions_recover(
    stack: DistributedStack, tenant: str, upstream: RunningUpstream
) -> None:
    await register_fixture(stack, tenant, upstream)
    user = stack.token(tenant, "bob", ("viewer",))
    session = await _session(stack.urls[0], user)
    call = await _slow_call_under_way(stack.urls[0], user, session, upstream)
    await upstream.stop(kill=True)
    failed = await asyncio.wait_for(call, timeout=60)
    assert failed.is_error
    assert "upstream_unreachable" in text_of(failed)
    await upstream.start()  # the restarted upstream knows none of the old sessions: 404, then a new one
    async with mcp_client(stack.urls[1], token=user, session=session) as client:
        assert text_of(await client.call_tool("fx_echo", {"text": "back"})) == "back"
    assert len(upstream.state.sessions) >= 2
    outcomes = await recorded_outcomes(stack.store_url, tenant, "fx_slow")
    assert list(outcomes.values()) == [["ToolFailed"]]


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[DistributedStack]:
    """A stack of its own: this test kills its workers."""
    with distributed_stack(tmp_path, apis=1, workers=1, extra={"LEDGER_CALL_TIMEOUT": "120"}) as running:
        yield running


async def test_a_worker_killed_mid_call_leaves_exactly_one_recorded_outcome(
    private_stack: DistributedStack, upstream: RunningUpstream
) -> None:
    stack, tenant = private_stack, f"fed-{secrets.token_hex(5)}"
    await register_fixture(stack, tenant, upstream)
    user = stack.token(tenant, "bob", ("viewer",))
    session = await _session(stack.urls[0], user)
    call = await _slow_call_under_way(stack.urls[0], user, session, upstream)
    await asyncio.to_thread(stack.workers[0].kill)  # mid-call: nothing recorded yet
    assert await recorded_outcomes(stack.store_url, tenant, "fx_slow") == {}
    replacement = await asyncio.to_thread(stack.start_worker)
    async with asyncio.timeout(240):  # the command is redelivered to the new worker, which calls again
        while upstream.state.calls["slow"] < 2:
            assert replacement.process.poll() is None, replacement.output()[-2000:]
            await asyncio.sleep(0.2)
    upstream.state.release.set()
    result = await asyncio.wait_for(call, timeout=180)
    assert text_of(result) == "done after 1 steps"
    async with asyncio.timeout(60):
        while not (outcomes := await recorded_outcomes(stack.store_url, tenant, "fx_slow")):
            await asyncio.sleep(0.2)
    assert list(outcomes.values()) == [["ToolSucceeded"]]


async def test_an_upstream_s_list_changed_reaches_an_agent_on_another_replica(
    stack: DistributedStack, tenant: str, upstream: RunningUpstream
) -> None:
    admin = stack.token(tenant, "root", ("admin",))
    async with mcp_client(stack.urls[0], token=admin) as client:
        entry = {"name": "fixture", "url": upstream.url, "prefix": "fx", "pinning": False}
        structured(await client.call_tool("register_server", entry))
    user = stack.token(tenant, "bob", ("viewer",))
    headers = {**JSON_RPC_HEADERS, "authorization": f"Bearer {user}"}
    async with httpx.AsyncClient(timeout=60) as http:
        opened = await http.post(stack.urls[1], json=INITIALIZE, headers=headers)
        on_session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
        async with http.stream(
            "GET", stack.urls[1], headers={**on_session, "accept": "text/event-stream"}
        ) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == ": listening"
            async with mcp_client(stack.urls[0], token=user) as client:
                assert text_of(await client.call_tool("fx_grow", {"name": "extra"})) == "added extra"
            heard = None
            async with asyncio.timeout(60):
                async for line in lines:
                    if line.startswith("data:") and "tools/list_changed" in line:
                        heard = line
                        break
    assert heard is not None
    async with mcp_client(stack.urls[1], token=user) as client:
        assert "fx_extra" in {tool.name for tool in (await client.list_tools()).tools}
