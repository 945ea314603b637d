"""Erasure is a barrier for held upstream sessions too: when a subject is erased, the worker
closes that subject's upstream MCP sessions at once (the upstream sees the DELETE), not at the
idle timeout, while another subject's session stays held and in use."""

from __future__ import annotations

import asyncio

import httpx
from mcp import Client

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream


async def _session_of(client: Client, upstream: RunningUpstream) -> str:
    """The upstream session the gateway holds for this client's calls."""
    before = set(upstream.state.sessions)
    result = await client.call_tool("fx_echo", {"text": "hello"})
    assert not result.is_error, text_of(result)
    (opened,) = upstream.state.sessions - before
    return opened


async def _erase(gw: RunningGateway, subject: str) -> None:
    admin = {"authorization": f"Bearer {token(gw, sub='ada', roles=('admin',))}"}
    async with httpx.AsyncClient(timeout=30, headers=admin) as http:
        erased = await http.post(f"{gw.url.removesuffix('/mcp')}/admin/erasures", json={"subject": subject})
    assert erased.status_code == 200, erased.text


async def test_erasing_a_subject_closes_its_held_upstream_sessions_and_no_one_else_s(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with (
        mcp_client(secured.url, token=token(secured, sub="alice")) as alice,
        mcp_client(secured.url, token=token(secured, sub="bob")) as bob,
    ):
        alice_session = await _session_of(alice, upstream)
        bob_session = await _session_of(bob, upstream)
        await _erase(secured, "alice")
        async with asyncio.timeout(10):  # closed in the background right after the barrier
            while alice_session not in upstream.state.deleted:
                await asyncio.sleep(0.05)
        held = set(upstream.state.sessions)
        again = await bob.call_tool("fx_echo", {"text": "still here"})
    assert not again.is_error, text_of(again)
    assert bob_session not in upstream.state.deleted
    assert upstream.state.sessions == held  # bob's session was kept, not reopened
