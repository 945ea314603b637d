"""MCP tasks on real services: a task started through one API replica whose worker is killed
mid-run and whose replica dies too is finished by another worker and fetched, completed,
from the other replica: nothing of a task lives in one process's memory. A task cancelled on
one replica has its tool stopped on the worker running it, and one cancellation recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.eventstore.ports import CommandKey
from mcp_ledger.eventstore.sql import open_event_store
from tests.support.distributed import DistributedStack, distributed_stack

pytestmark = pytest.mark.integration

PROTOCOL = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DistributedStack]:
    """A stack of its own (its processes get killed): two API replicas and one worker."""
    with distributed_stack(tmp_path, apis=2, workers=1) as running:
        yield running


async def _rpc(url: str, token: str, method: str, params: dict[str, Any], name: str) -> dict[str, Any]:
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "authorization": f"Bearer {token}",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": method,
        "mcp-name": name,
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    async with httpx.AsyncClient(timeout=30) as http:
        answer: dict[str, Any] = (await http.post(url, json=body, headers=headers)).json()
    return answer


async def test_a_task_whose_worker_and_replica_die_is_finished_elsewhere_and_served_by_the_other_replica(
    stack: DistributedStack, unique: str
) -> None:
    [doomed], [first, second] = stack.workers, stack.apis
    token = stack.token(f"tenant-{unique}", "alice", ("operator",))
    created = (
        await _rpc(first.url, token, "tools/call", {"name": "sleep", "arguments": {"ms": 4000}}, "sleep")
    )["result"]
    assert created["resultType"] == "task"
    task_id = created["taskId"]
    assert (await _rpc(second.url, token, "tasks/get", {"taskId": task_id}, task_id))["result"][
        "status"
    ] == "working"
    await asyncio.sleep(1.5)  # the worker is inside the 4 s sleep
    survivor = stack.start_worker()
    doomed.kill()
    first.kill()
    async with asyncio.timeout(150):
        while True:
            answer = (await _rpc(second.url, token, "tasks/get", {"taskId": task_id}, task_id))["result"]
            if answer["status"] != "working":
                break
            await asyncio.sleep(0.5)
    assert answer["status"] == "completed"
    assert answer["result"]["structuredContent"] == {"slept_ms": 4000}
    assert survivor.process.poll() is None
    other = stack.token(f"tenant-{unique}", "bob", ("operator",))
    assert (await _rpc(second.url, other, "tasks/get", {"taskId": task_id}, task_id))["error"][
        "code"
    ] == -32602


async def _task_events(store_url: str, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    store = await open_event_store(store_url)
    try:
        found = []
        after = 0
        while batch := await store.read_all(after_position=after, limit=1000):
            found += [(e.event_type, e.data) for e in batch if e.stream_id.endswith(f":{task_id}")]
            after = batch[-1].position
        return found
    finally:
        await store.close()


async def _terminal(store_url: str, key: CommandKey) -> list[tuple[str, dict[str, Any]]]:
    store = await open_event_store(store_url)
    try:
        recorded = await store.events_for_command(key)
        return [(e.event_type, e.data) for e in recorded if e.event_type in {"ToolSucceeded", "ToolFailed"}]
    finally:
        await store.close()


async def test_a_task_cancelled_on_another_replica_stops_its_tool_on_the_worker_and_is_recorded_once(
    stack: DistributedStack, unique: str
) -> None:
    [first, second] = stack.apis
    tenant = f"tenant-{unique}"
    token = stack.token(tenant, "alice", ("operator",))
    sleep_ms = 30_000
    call = {"name": "sleep", "arguments": {"ms": sleep_ms}}
    task_id = (await _rpc(first.url, token, "tools/call", call, "sleep"))["result"]["taskId"]
    [(_, created)] = [
        item for item in await _task_events(stack.store_url, task_id) if item[0] == "McpTaskCreated"
    ]
    key = CommandKey(tenant, created["subject"], created["command_id"])
    await asyncio.sleep(2)  # the worker is inside the 30 s sleep
    assert await _terminal(stack.store_url, key) == []
    cancelled_at = time.monotonic()
    ack = await _rpc(second.url, token, "tasks/cancel", {"taskId": task_id}, task_id)
    assert ack["result"]["resultType"] == "complete"
    again = await _rpc(first.url, token, "tasks/cancel", {"taskId": task_id}, task_id)
    assert again["result"]["resultType"] == "complete"
    async with asyncio.timeout(30):
        while not (terminal := await _terminal(stack.store_url, key)):
            await asyncio.sleep(0.2)
    assert time.monotonic() - cancelled_at < sleep_ms / 1000 / 2  # stopped, not slept out
    assert [(kind, data["error_code"]) for kind, data in terminal] == [("ToolFailed", "cancelled")]
    for api in (first, second):
        got = await _rpc(api.url, token, "tasks/get", {"taskId": task_id}, task_id)
        assert got["result"]["status"] == "cancelled"
    kinds = [kind for kind, _ in await _task_events(stack.store_url, task_id)]
    assert kinds == ["McpTaskCreated", "McpTaskCancelled"]


async def test_a_plan_task_whose_worker_dies_mid_plan_finishes_on_another_and_is_served_by_any_replica(
    stack: DistributedStack, unique: str
) -> None:
    [doomed], [first, second] = stack.workers, stack.apis
    token = stack.token(f"tenant-{unique}", "alice", ("operator",))
    plan = {
        "plan_id": "crash",
        "tasks": [
            {"id": "a", "tool_name": "sleep", "parameters": {"ms": 100}},
            {"id": "b", "tool_name": "sleep", "parameters": {"ms": 4000}, "dependencies": ["a"]},
            {"id": "c", "tool_name": "echo", "parameters": {"text": "after"}, "dependencies": ["b"]},
        ],
    }
    accepted = await _rpc(
        first.url, token, "tools/call", {"name": "create_plan", "arguments": {"plan": plan}}, "create_plan"
    )
    assert not accepted["result"].get("isError"), accepted
    start = {"name": "execute_plan", "arguments": {"plan_id": "crash"}}
    created = (await _rpc(first.url, token, "tools/call", start, "execute_plan"))["result"]
    assert created["resultType"] == "task"
    task_id = created["taskId"]
    async with asyncio.timeout(60):
        while True:
            got = (await _rpc(second.url, token, "tasks/get", {"taskId": task_id}, task_id))["result"]
            if got.get("statusMessage") == "1/3 steps":
                break
            await asyncio.sleep(0.2)
    survivor = stack.start_worker()
    doomed.kill()  # inside step b's 4 s sleep
    async with asyncio.timeout(150):
        while True:
            got = (await _rpc(second.url, token, "tasks/get", {"taskId": task_id}, task_id))["result"]
            if got["status"] != "working":
                break
            await asyncio.sleep(0.5)
    assert got["status"] == "completed"
    assert got["result"]["structuredContent"]["status"] == "succeeded"
    assert got["result"]["structuredContent"]["tasks"]["c"]["output"] == {"text": "after"}
    assert survivor.process.poll() is None
    kinds = [kind for kind, _ in await _task_events(stack.store_url, task_id)]
    assert kinds == ["McpTaskCreated", "McpTaskCompleted"]
