"""Upstream tools in durable plans (embedded gateway, auth on, the fixture upstream speaking
real MCP): a plan step names an upstream tool by its exposed name (prefix included) and the
executor runs it as a recorded CallTool like an agent's call: its output feeds later steps,
the caller's roles are checked at acceptance, and a failed step is retried by the plan's
policy only when the upstream annotated its tool read-only or idempotent."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.e2e.federation.steps import opened_events, register, token
from tests.support.chat_server import chat_server
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream

RETRY = {"max_attempts": 3, "initial": 0.01, "max": 0.02}


async def _run(gw: RunningGateway, plan: dict[str, Any], **claims: Any) -> dict[str, Any]:
    async with mcp_client(gw.url, token=token(gw, **claims)) as client:
        created = await client.call_tool("create_plan", {"plan": plan, "execute": True})
        assert not created.is_error, text_of(created)
        status = await client.call_tool("plan_status", {"plan_id": plan["plan_id"], "wait_seconds": 20})
    return structured(status)


async def test_a_plan_step_runs_an_upstream_tool_and_feeds_the_next_step(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    marker = f"marker-{uuid.uuid4().hex}"
    plan = {
        "plan_id": "upstream-chain",
        "tasks": [
            {"id": "first", "tool_name": "fx_echo", "parameters": {"text": marker}},
            {"id": "second", "tool_name": "fx_echo", "parameters": {"text": "${first.output.result}"}},
        ],
    }
    status = await _run(secured, plan, sub="planner", roles=("viewer",))
    assert status["status"] == "succeeded", status
    assert status["tasks"]["second"]["output"] == {"result": marker}
    assert upstream.state.calls["echo"] == 2
    calls = [e for e in await opened_events(secured) if e.event_type == "ToolSucceeded"]
    echoed = [e for e in calls if e.data["tool_name"] == "fx_echo"]
    assert len(echoed) == 2  # each step recorded once, like an agent's call


async def test_a_plan_naming_an_upstream_tool_the_caller_may_not_use_is_refused(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream, tool_roles={"echo": "admin"}))
    plan = {
        "plan_id": "not-mine",
        "tasks": [{"id": "a", "tool_name": "fx_echo", "parameters": {"text": "x"}}],
    }
    async with mcp_client(secured.url, token=token(secured, sub="viewer", roles=("viewer",))) as client:
        refused = await client.call_tool("create_plan", {"plan": plan, "execute": True})
    assert refused.is_error
    assert "fx_echo: this tool needs the role 'admin'" in text_of(refused)
    assert upstream.state.calls["echo"] == 0


async def test_an_unknown_upstream_tool_name_is_refused_at_creation(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    plan = {"plan_id": "typo", "tasks": [{"id": "a", "tool_name": "fx_nope", "parameters": {}}]}
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        refused = await client.call_tool("create_plan", {"plan": plan})
    assert refused.is_error
    assert "unknown tool 'fx_nope'" in text_of(refused)


async def test_a_failing_upstream_step_not_annotated_safe_is_not_retried(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    plan = {"plan_id": "fails-once", "tasks": [{"id": "f", "tool_name": "fx_fails", "retry": RETRY}]}
    status = await _run(secured, plan, roles=("viewer",))
    assert status["status"] == "failed", status
    assert status["tasks"]["f"]["attempts"] == 1
    assert upstream.state.calls["fails"] == 1


async def test_a_failing_read_only_upstream_step_is_retried_by_the_plans_policy(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    await upstream.stop()  # every attempt of the read-only echo now fails: unreachable
    plan = {
        "plan_id": "retried",
        "tasks": [{"id": "e", "tool_name": "fx_echo", "parameters": {"text": "x"}, "retry": RETRY}],
    }
    status = await _run(secured, plan, roles=("viewer",))
    assert status["status"] == "failed", status
    assert status["tasks"]["e"]["attempts"] == 3
    assert status["tasks"]["e"]["error_code"] == "upstream_unreachable"


async def test_a_planner_is_offered_the_callers_upstream_tools_and_its_plan_runs_them(
    tmp_path: Path, upstream: RunningUpstream
) -> None:
    marker = f"planned-{uuid.uuid4().hex}"
    planned = {"tasks": [{"id": "up", "tool_name": "fx_echo", "parameters": {"text": marker}}]}
    async with chat_server() as (chat, url):
        settings = embedded_settings(tmp_path, no_auth=False).model_copy(
            update={"registry_allowed_hosts": "127.0.0.1", "planner_url": url}
        )
        async with gateway(settings) as gw:
            structured(await register(gw, upstream, tool_roles={"fails": "admin"}))
            chat.answers.append(json.dumps(planned))
            async with mcp_client(gw.url, token=token(gw, sub="planner", roles=("viewer",))) as client:
                created = await client.call_tool("create_plan", {"goal": "echo the marker", "execute": True})
                assert not created.is_error, text_of(created)
                plan_id = structured(created)["plan_id"]
                status = structured(
                    await client.call_tool("plan_status", {"plan_id": plan_id, "wait_seconds": 20})
                )
    assert status["status"] == "succeeded", status
    assert status["tasks"]["up"]["output"] == {"result": marker}
    (asked,) = chat.requests
    offered = asked["body"]["messages"][1]["content"]
    assert "fx_echo" in offered
    assert "fx_fails" not in offered  # needs admin: a viewer's planner is not offered it


async def test_a_failed_plan_of_upstream_steps_is_replanned_with_them(
    tmp_path: Path, upstream: RunningUpstream
) -> None:
    failing = {"plan_id": "up-flaky", "tasks": [{"id": "f", "tool_name": "fx_fails"}]}
    fixed = {"tasks": [{"id": "e", "tool_name": "fx_echo", "parameters": {"text": "again"}}]}
    async with chat_server() as (chat, url):
        settings = embedded_settings(tmp_path, no_auth=False).model_copy(
            update={"registry_allowed_hosts": "127.0.0.1", "planner_url": url}
        )
        async with gateway(settings) as gw:
            structured(await register(gw, upstream))
            chat.answers.append(json.dumps(fixed))
            failed = await _run(gw, failing, roles=("viewer",))
            assert failed["status"] == "failed", failed
            async with mcp_client(gw.url, token=token(gw, roles=("viewer",))) as client:
                replanned = await client.call_tool(
                    "replan_plan", {"plan_id": "up-flaky", "execute": True, "approve_new_tools": ["fx_echo"]}
                )
                assert not replanned.is_error, text_of(replanned)
                plan_id = structured(replanned)["plan_id"]
                status = structured(
                    await client.call_tool("plan_status", {"plan_id": plan_id, "wait_seconds": 20})
                )
    assert status["status"] == "succeeded", status
    assert status["tasks"]["e"]["output"] == {"result": "again"}
