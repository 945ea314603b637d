"""The worker's upstream session pool keeps a lock per session key only while that key has
a session or a caller: over many sessions swept, evicted, failed or expired, the locks do not
pile up. The sessions are real MCP sessions with an in-memory SDK server."""

from __future__ import annotations

import asyncio

import pytest
from mcp import Client
from mcp.server import MCPServer

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.consumers.upstreams.connection import UpstreamConnection, UpstreamTarget
from mcp_ledger.consumers.upstreams.sessions import SessionKey, UpstreamSessions
from mcp_ledger.domain.upstreams.model import UpstreamServer

SERVER = MCPServer("fixture")
TARGET = UpstreamTarget(UpstreamServer(name="fixture", url="http://127.0.0.1:9/mcp"), None, "acme", None)


@SERVER.tool()
def echo(text: str) -> str:
    return text


async def connect(target: UpstreamTarget) -> UpstreamConnection:
    """An SDK client session over the in-memory server, owned by a task like the real connector's."""
    ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
    close_event = asyncio.Event()

    async def own() -> None:
        async with Client(SERVER) as client:
            ready.set_result(client)
            await close_event.wait()

    task = asyncio.create_task(own())
    return UpstreamConnection(await ready, close_event, task)


async def refuse(target: UpstreamTarget) -> UpstreamConnection:
    raise ToolExecutionError("upstream_unreachable", "refused")


def _key(number: int) -> SessionKey:
    return ("acme", f"session:s{number}", "", "fixture", "entry")


async def _echo(client: Client) -> str:
    return client.protocol_version  # the pool's bookkeeping is under test, not the call


async def test_locks_go_with_their_sessions_when_idle_ones_are_swept() -> None:
    sessions = UpstreamSessions(connect, idle_s=0.0)  # every session is idle at once
    for number in range(60):
        await sessions.use(_key(number), TARGET, _echo, retry_broken=False)
        assert len(sessions._locks) <= len(sessions)
    await sessions.sweep()
    assert len(sessions) == 0
    assert sessions._locks == {}
    await sessions.close()


async def test_locks_go_with_evicted_sessions_so_the_pool_stays_bounded() -> None:
    sessions = UpstreamSessions(connect, max_sessions=4)
    for number in range(60):
        await sessions.use(_key(number), TARGET, _echo, retry_broken=False)
    assert len(sessions) == 4
    assert len(sessions._locks) == 4
    await sessions.close()
    assert sessions._locks == {}


async def test_a_failed_connect_leaves_no_lock_behind() -> None:
    sessions = UpstreamSessions(refuse)
    for number in range(30):
        with pytest.raises(ToolExecutionError):
            await sessions.use(_key(number), TARGET, _echo, retry_broken=False)
    assert sessions._locks == {}


async def test_callers_waiting_on_one_key_share_one_session_and_leave_one_lock() -> None:
    sessions = UpstreamSessions(connect)
    results = await asyncio.gather(
        *(sessions.use(_key(1), TARGET, _echo, retry_broken=False) for _ in range(10))
    )
    assert len(results) == 10
    assert len(sessions) == 1
    assert list(sessions._locks) == [_key(1)]
    await sessions.close()
    assert sessions._locks == {}


async def test_forgetting_a_subject_closes_only_its_sessions_and_their_locks() -> None:
    sessions = UpstreamSessions(connect)
    alice, bob = ("acme", "alice", "", "", "fixture", "e"), ("acme", "bob", "", "", "fixture", "e")
    other_tenant = ("globex", "alice", "", "", "fixture", "e")
    for key in (alice, bob, other_tenant):
        await sessions.use(key, TARGET, _echo, retry_broken=False)
    sessions.forget_subject("acme", "alice")
    assert set(sessions._locks) == {bob, other_tenant}
    assert len(sessions) == 2
    await sessions.close()
    assert sessions._closing == set()
