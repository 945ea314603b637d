"""Who sees an upstream (auth on): one tenant's upstreams are invisible to another, and a
session-scoped upstream is invisible to the tenant's other sessions and to another subject
sending that session's id; the attacker's calls reach nothing."""

from __future__ import annotations

import pytest
from mcp import MCPError

from tests.e2e.federation.steps import register, token, tool_names
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream


async def _open_session(gw: RunningGateway) -> str:
    async with mcp_client(gw.url, token=token(gw)) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def test_one_tenant_s_upstream_is_invisible_and_uncallable_for_another_tenant(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    assert "fx_echo" in await tool_names(secured)
    assert "fx_echo" not in await tool_names(secured, tenant="globex")
    async with mcp_client(secured.url, token=token(secured, tenant="globex")) as client:
        listed = structured(await client.call_tool("list_servers", {}))
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("fx_echo", {"text": "x"})
    assert listed == {"servers": []}
    assert upstream.state.calls["echo"] == 0


async def test_a_session_scoped_upstream_is_seen_only_in_its_session_by_its_subject(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    mine = await _open_session(secured)
    other = await _open_session(secured)
    structured(await register(secured, upstream, session=mine, scope="session"))
    assert "fx_echo" in await tool_names(secured, session=mine)
    assert "fx_echo" not in await tool_names(secured, session=other)
    assert "fx_echo" not in await tool_names(secured)
    # another subject of the same tenant sending alice's session id sees nothing of it
    assert "fx_echo" not in await tool_names(secured, session=mine, sub="mallory")
    async with mcp_client(secured.url, token=token(secured, sub="mallory"), session=mine) as client:
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("fx_echo", {"text": "x"})
    async with mcp_client(secured.url, token=token(secured), session=mine) as client:
        assert text_of(await client.call_tool("fx_echo", {"text": "mine"})) == "mine"
    assert upstream.state.calls["echo"] == 1
