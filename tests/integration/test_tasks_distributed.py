"""MCP tasks on real services: a task started through one API replica whose worker is killed
mid-run and whose replica dies too is finished by another worker and fetched, completed,
from the other replica: nothing of a task lives in one process's memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

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
