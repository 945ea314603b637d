"""Upstream tools in durable plans on the real services (Kafka, PostgreSQL, Redis; API
replicas and workers as processes, auth on): a plan created on one replica whose steps name
an upstream tool runs on a worker, each step recorded once as a call, its status read from
another replica; a step not annotated safe is not retried (fixtures: conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.federation.recorded import recorded_outcomes, register_fixture
from tests.support.clients import mcp_client, structured, text_of
from tests.support.distributed import DistributedStack
from tests.support.upstream import RunningUpstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
RETRY = {"max_attempts": 3, "initial": 0.01, "max": 0.02}


async def _plan(stack: DistributedStack, token: str, plan: dict[str, Any]) -> dict[str, Any]:
    async with mcp_client(stack.urls[0], token=token) as client:
        created = await client.call_tool("create_plan", {"plan": plan, "execute": True})
        assert not created.is_error, text_of(created)
    async with mcp_client(stack.urls[-1], token=token) as client:  # another replica
        status = await client.call_tool("plan_status", {"plan_id": plan["plan_id"], "wait_seconds": 30})
    return structured(status)


async def test_a_plan_of_upstream_steps_runs_on_a_worker_each_step_recorded_once(
    stack: DistributedStack, tenant: str, upstream: RunningUpstream
) -> None:
    await register_fixture(stack, tenant, upstream)
    user = stack.token(tenant, "carol", ("viewer",))
    plan = {
        "plan_id": "fed-chain",
        "tasks": [
            {"id": "a", "tool_name": "fx_echo", "parameters": {"text": "through kafka"}},
            {"id": "b", "tool_name": "fx_echo", "parameters": {"text": "${a.output.result}"}},
        ],
    }
    status = await _plan(stack, user, plan)
    assert status["status"] == "succeeded", status["tasks"]
    assert status["tasks"]["b"]["output"] == {"result": "through kafka"}
    outcomes = await recorded_outcomes(stack.store_url, tenant, "fx_echo")
    assert sorted(outcomes.values()) == [["ToolSucceeded"], ["ToolSucceeded"]]
    assert upstream.state.calls["echo"] == 2


async def test_a_failing_upstream_step_not_annotated_safe_runs_once_on_the_real_services(
    stack: DistributedStack, tenant: str, upstream: RunningUpstream
) -> None:
    await register_fixture(stack, tenant, upstream)
    user = stack.token(tenant, "carol", ("viewer",))
    plan = {"plan_id": "fed-fails", "tasks": [{"id": "f", "tool_name": "fx_fails", "retry": RETRY}]}
    status = await _plan(stack, user, plan)
    assert status["status"] == "failed", status
    assert status["tasks"]["f"]["attempts"] == 1
    assert list((await recorded_outcomes(stack.store_url, tenant, "fx_fails")).values()) == [
        ["ToolSucceeded"]
    ]
    assert upstream.state.calls["fails"] == 1
