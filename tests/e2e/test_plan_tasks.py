"""A plan run as an MCP task on the embedded gateway (2026-07-28 wire, auth on): execute_plan
called by a negotiating client answers a task at once, the task's progress is the plan's, its
result is the plan's, tasks/cancel cancels the plan run, a refused start ends the task as a
tool error, and another subject's plan of the same label is never the one followed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_mcp_tasks import Caller, _events
from tests.support.embedded import RunningGateway, embedded_settings, gateway


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


def _plan(plan_id: str, nap_ms: int) -> dict[str, Any]:
    return {
        "plan_id": plan_id,
        "tasks": [
            {"id": "hello", "tool_name": "echo", "parameters": {"text": "hello"}},
            {"id": "nap", "tool_name": "sleep", "parameters": {"ms": nap_ms}, "dependencies": ["hello"]},
            {"id": "bye", "tool_name": "echo", "parameters": {"text": "bye"}, "dependencies": ["nap"]},
        ],
    }


async def _created(caller: Caller, plan: dict[str, Any]) -> None:
    accepted = await caller.call("create_plan", {"plan": plan})
    assert not accepted.get("isError"), accepted


async def _progress_seen(caller: Caller, task_id: str, wanted: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            result: dict[str, Any] = (await caller.task("tasks/get", task_id))["result"]
            if result.get("statusMessage") == wanted or result["status"] != "working":
                return result
            await asyncio.sleep(0.05)


async def test_execute_plan_as_a_task_follows_the_plan_and_ends_with_its_result(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    await _created(alice, _plan("walk", 1500))
    created = await alice.call("execute_plan", {"plan_id": "walk"})
    assert created["resultType"] == "task"
    assert created["status"] == "working"
    midway = await _progress_seen(alice, created["taskId"], "1/3 steps")
    assert midway["status"] == "working"
    assert midway["statusMessage"] == "1/3 steps"
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed"
    assert not done["result"].get("isError")
    payload = done["result"]["structuredContent"]
    assert payload["plan_id"] == "walk"
    assert payload["status"] == "succeeded"
    assert payload["tasks"]["bye"]["output"] == {"text": "bye"}
    types = [event_type for event_type, _ in await _events(gw, created["taskId"])]
    assert types == ["McpTaskCreated", "McpTaskCompleted"]


async def test_cancelling_a_plan_task_cancels_the_plan_run_once(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    await _created(alice, _plan("long", 20_000))
    created = await alice.call("execute_plan", {"plan_id": "long"})
    await _progress_seen(alice, created["taskId"], "1/3 steps")
    ack = await alice.task("tasks/cancel", created["taskId"])
    assert ack["result"]["resultType"] == "complete"
    assert (await alice.task("tasks/cancel", created["taskId"]))["result"]["resultType"] == "complete"
    assert (await alice.settled(created["taskId"]))["status"] == "cancelled"
    async with asyncio.timeout(20):
        while True:
            status = (await alice.call("plan_status", {"plan_id": "long"}))["structuredContent"]
            if status["status"] == "cancelled":
                break
            await asyncio.sleep(0.05)
    assert status["tasks"]["bye"]["status"] in {"cancelled", "skipped", "pending"}
    types = [event_type for event_type, _ in await _events(gw, created["taskId"])]
    assert types == ["McpTaskCreated", "McpTaskCancelled"]


async def test_a_refused_plan_start_ends_the_task_as_a_tool_error(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    created = await alice.call("execute_plan", {"plan_id": "never-made"})
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed"
    assert done["result"]["isError"] is True
    assert "unknown" in done["result"]["content"][0]["text"]


async def test_a_plan_task_follows_its_owners_plan_not_another_subjects_of_the_same_label(
    gw: RunningGateway,
) -> None:
    alice, bob = Caller(gw, "alice"), Caller(gw, "bob")
    await _created(bob, _plan("shared", 0))
    bob_task = await bob.call("execute_plan", {"plan_id": "shared"})
    assert (await bob.settled(bob_task["taskId"]))["status"] == "completed"
    created = await alice.call("execute_plan", {"plan_id": "shared"})
    done = await alice.settled(created["taskId"])
    assert done["result"]["isError"] is True
    assert "bye" not in done["result"]["content"][0]["text"]
    assert (await bob.task("tasks/get", created["taskId"]))["error"]["code"] == -32602


async def test_without_the_extension_execute_plan_stays_synchronous(gw: RunningGateway) -> None:
    carol = Caller(gw, "carol", tasks=False)
    await _created(carol, _plan("plain", 0))
    started = await carol.call("execute_plan", {"plan_id": "plain", "wait_seconds": 10})
    assert "resultType" not in started or started["resultType"] == "complete"
    assert started["structuredContent"]["status"] == "succeeded"
