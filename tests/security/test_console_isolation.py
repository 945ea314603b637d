"""The console on the embedded and the distributed stack: a tenant's auditor sees their
tenant's calls and plans (on the distributed stack through the other API replica, from the
shared views), and another tenant's admin sees none of it and erases nothing of it."""

from __future__ import annotations

import asyncio
import time

import httpx

from mcp_ledger.domain.streams import subject_tag
from tests.support.clients import mcp_client
from tests.support.console import base_of, csrf_of, http_sign_in
from tests.support.stacks import Stack

PLAN = {
    "plan_id": "ledger-close",
    "tasks": [{"id": "only", "tool_name": "echo", "parameters": {"text": "x"}}],
}


async def _eventually(client: httpx.AsyncClient, path: str, needle: str, within: float = 30.0) -> str:
    """The page once it shows `needle` (projections catch up asynchronously), bounded."""
    ends = time.monotonic() + within
    while True:
        text = (await client.get(path)).text
        if needle in text or time.monotonic() > ends:
            return text
        await asyncio.sleep(0.2)


async def test_the_console_shows_a_tenant_its_own_records_and_another_tenants_admin_nothing(
    stack: Stack, tenant_names: dict[str, str]
) -> None:
    acme, globex = tenant_names["acme"], tenant_names["globex"]
    async with mcp_client(stack.urls[0], token=stack.token(acme, "alice")) as mcp:
        await mcp.call_tool("echo", {"text": "acme secret"})
        await mcp.call_tool("note_set", {"key": "k", "value": "acme note"})
        await mcp.call_tool("create_plan", {"plan": PLAN, "execute": True})
    console = base_of(stack.urls[-1])
    plan_path = f"/console/plans/{subject_tag('alice')}/ledger-close"
    async with (
        httpx.AsyncClient(base_url=console, timeout=30.0) as own,
        httpx.AsyncClient(base_url=console, timeout=30.0) as other,
    ):
        await http_sign_in(own, stack.token(acme, "audrey", ("auditor",)))
        await http_sign_in(other, stack.token(globex, "carol", ("admin",)))
        plans = await _eventually(own, "/console/plans", "ledger-close")
        plan = await _eventually(own, plan_path, 'data-state="succeeded"')
        audit = (await own.get("/console/audit?subject=alice&tool=echo")).text
        subject = await _eventually(own, "/console/subjects?subject=alice", "<code>")
        seen = [
            await other.get(path)
            for path in (
                "/console/audit?subject=alice", "/console/plans", "/console/subjects?subject=alice",
                "/console/privacy?subject=alice", "/console/audit/export?format=csv", "/console/",
            )
        ]  # fmt: skip
        foreign_plan = await other.get(plan_path)
        page = await other.get("/console/privacy?subject=alice")
        erase = {"subject": "alice", "confirm": "alice", "csrf": csrf_of(page.text)}
        await other.post("/console/privacy/erase", data=erase, headers={"origin": console})
        after = await _eventually(own, "/console/subjects?subject=alice", "<code>")
    assert "ledger-close" in plans
    assert 'id="plan-status" class="state" data-state="succeeded"' in plan
    assert "ToolSucceeded" in audit
    assert "acme secret" not in audit  # an auditor sees that it happened, not what was said
    assert "<code>" in subject  # alice's session, as the views hold it
    assert foreign_plan.status_code == 404
    for answer in seen:
        assert acme not in answer.text
        assert "ledger-close" not in answer.text
    assert 'id="session-count">0<' in seen[3].text
    assert "<code>" in after  # globex's erasure of "alice" did not touch acme's alice
