"""Large catalogs (auth on): search_tools finds upstream tools by words, within the caller's
roles, and select_tools narrows what one session lists; the gateway's own tools stay."""

from __future__ import annotations

from tests.e2e.federation.steps import register, token, tool_names
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream


async def test_search_tools_ranks_by_name_and_description_within_the_caller_s_roles(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream, tool_roles={"picture": "admin"}))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        found = structured(await client.call_tool("search_tools", {"query": "progress steps"}))
        image = structured(await client.call_tool("search_tools", {"query": "picture image"}))
    assert found["tools"][0]["name"] == "fx_slow"
    assert "fx_picture" not in [tool["name"] for tool in image["tools"]]


async def test_select_tools_narrows_one_session_s_listing(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured)) as client:
        narrowed = str(structured(await client.call_tool("session_open", {}))["session_id"])
        other = str(structured(await client.call_tool("session_open", {}))["session_id"])
    async with mcp_client(secured.url, token=token(secured), session=narrowed) as client:
        structured(await client.call_tool("select_tools", {"patterns": ["fx_e*"]}))
    listed = await tool_names(secured, session=narrowed)
    assert "fx_echo" in listed
    assert "fx_slow" not in listed
    assert "session_open" in listed  # the gateway's own tools are always listed
    assert "fx_slow" in await tool_names(secured, session=other)
