"""The console's Registry page over real upstream entries: a pinned server's changed tool
waits there with its hash, an admin's approval is the same recorded approve_server command
naming that hash and exposes it, a stale hash is refused, an admin's rejection is the recorded
reject_server command, and another tenant's admin neither sees nor decides it."""

from __future__ import annotations

import re

import httpx

from tests.e2e.federation.steps import opened_events, register, token
from tests.support.clients import mcp_client, structured
from tests.support.console import base_of, csrf_of, http_sign_in
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream, change_mutable

CHANGED = "A changed description the admin has not seen yet."


def _shown_hash(page: str) -> str:
    found = re.search(r'name="hash" value="([0-9a-f]{64})"', page)
    assert found is not None, "the page shows no pending hash"
    return found.group(1)


def _client(running: RunningGateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_of(running.url), timeout=30.0)


async def _description(gw: RunningGateway, name: str) -> str | None:
    async with mcp_client(gw.url, token=token(gw)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    return tools[name].description


async def test_a_pending_upstream_change_is_listed_and_an_admin_s_approval_exposes_it(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    change_mutable(upstream, CHANGED)
    async with mcp_client(secured.url, token=token(secured)) as admin:
        structured(await admin.call_tool("refresh_server", {"name": "fixture"}))
    origin = base_of(secured.url)
    async with _client(secured) as admin, _client(secured) as other:
        await http_sign_in(admin, token(secured, sub="ada", roles=("admin",)))
        await http_sign_in(other, token(secured, sub="carl", tenant="globex", roles=("admin",)))
        registry = await admin.get("/console/registry")
        shown = _shown_hash(registry.text)
        foreign = await other.get("/console/registry")
        stolen = await other.post("/console/registry/approvals/fixture",
                                  data={"decision": "approve", "csrf": csrf_of(foreign.text),
                                        "tool": "mutable", "hash": shown},
                                  headers={"origin": origin})  # fmt: skip
        assert await _description(secured, "fx_mutable") != CHANGED
        stale = await admin.post("/console/registry/approvals/fixture",
                                 data={"decision": "approve", "csrf": csrf_of(registry.text),
                                       "tool": "mutable", "hash": "0" * 64},
                                 headers={"origin": origin})  # fmt: skip
        assert await _description(secured, "fx_mutable") != CHANGED
        decided = await admin.post("/console/registry/approvals/fixture",
                                   data={"decision": "approve", "csrf": csrf_of(registry.text),
                                         "tool": "mutable", "hash": shown},
                                   headers={"origin": origin})  # fmt: skip
    assert "fixture" in registry.text
    assert "mutable" in registry.text
    assert 'action="/console/registry/approvals/fixture"' in registry.text
    assert "fixture" not in foreign.text
    assert stolen.status_code == 303
    assert "Not+approved" in stolen.headers["location"]
    assert "Not+approved" in stale.headers["location"]
    assert decided.status_code == 303
    assert "Approved" in decided.headers["location"], decided.headers
    assert await _description(secured, "fx_mutable") == CHANGED
    approved_by = [
        e.metadata.get("subject")
        for e in await opened_events(secured)
        if e.event_type == "UpstreamToolsApproved"
    ]
    assert approved_by.count("ada") == 1  # the registration's own approval is the registering admin's


async def test_an_admin_s_rejection_on_the_registry_page_is_recorded_and_shown_in_its_history(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    original = await _description(secured, "fx_mutable")
    change_mutable(upstream, CHANGED)
    async with mcp_client(secured.url, token=token(secured)) as admin:
        structured(await admin.call_tool("refresh_server", {"name": "fixture"}))
    async with _client(secured) as admin:
        await http_sign_in(admin, token(secured, sub="ada", roles=("admin",)))
        registry = await admin.get("/console/registry")
        shown = _shown_hash(registry.text)
        decided = await admin.post("/console/registry/approvals/fixture",
                                   data={"decision": "reject", "csrf": csrf_of(registry.text),
                                         "tool": "mutable", "hash": shown},
                                   headers={"origin": base_of(secured.url)})  # fmt: skip
        after = await admin.get("/console/registry")
    assert "Rejected+and+recorded" in decided.headers["location"], decided.headers
    assert "UpstreamToolRejected" in after.text
    assert f"fixture/mutable {shown[:12]}" in after.text
    assert "Nothing waits for approval." in after.text
    assert await _description(secured, "fx_mutable") == original
    rejected = [e for e in await opened_events(secured) if e.event_type == "UpstreamToolRejected"]
    assert [(e.data["definition_hash"], e.data["rejected_by"]) for e in rejected] == [(shown, "ada")]
