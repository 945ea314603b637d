"""The plain-HTTP way in (auth on): POST/GET /v1/servers, DELETE /v1/servers/{name}, run as
the same commands as over MCP, stdio refused, roles enforced."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.federation.steps import token, tool_names
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream


def _http(gw: RunningGateway, **kwargs: Any) -> httpx.AsyncClient:
    bearer = token(gw, **kwargs)
    return httpx.AsyncClient(
        base_url=gw.url.removesuffix("/mcp"), timeout=30, headers={"authorization": f"Bearer {bearer}"}
    )


async def test_servers_are_registered_listed_and_removed_over_http(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    async with _http(secured) as http:
        created = await http.post(
            "/v1/servers", json={"name": "fixture", "url": upstream.url, "prefix": "fx"}
        )
        listed = await http.get("/v1/servers")
        assert "fx_echo" in await tool_names(secured)
        removed = await http.delete("/v1/servers/fixture")
    assert created.status_code == 201, created.text
    assert "fx_echo" in created.json()["exposed"]
    assert listed.status_code == 200
    assert [s["name"] for s in listed.json()["servers"]] == ["fixture"]
    assert removed.status_code == 200
    assert "fx_echo" not in await tool_names(secured)


async def test_a_stdio_command_is_refused_over_http_and_nothing_runs(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    body = {"name": "local", "url": upstream.url, "command": ["sh", "-c", "id"]}
    async with _http(secured) as http:
        refused = await http.post("/v1/servers", json=body)
        listed = await http.get("/v1/servers")
    assert refused.status_code == 422
    assert "only from operator configuration" in refused.text
    assert listed.json() == {"servers": []}


async def test_registering_over_http_needs_the_registering_role(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    async with _http(secured, roles=("operator",)) as http:
        refused = await http.post("/v1/servers", json={"name": "fixture", "url": upstream.url})
    assert refused.status_code == 403
    assert upstream.state.calls.total() == 0
