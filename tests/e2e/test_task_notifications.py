"""notifications/tasks (SEP-2663) on 2026-07-28 `subscriptions/listen` streams, embedded
gateway with auth on: a negotiating client's stream hears its own task's status with the
result inlined once it completes, tagged with its subscription id; another subject's stream
of the same tenant hears nothing of it (its first task notification is its own task's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_mcp_tasks import PROTOCOL, TASKS, Caller
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


class Listener:
    """One subject's open subscriptions/listen stream, its task notifications collected."""

    def __init__(self) -> None:
        self.tasks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.acknowledged = asyncio.Event()


@contextlib.asynccontextmanager
async def listening(gw: RunningGateway, subject: str, request_id: int) -> AsyncIterator[Listener]:
    listener = Listener()
    token = good_token(gw.runtime.settings, sub=subject)
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": True}, "_meta": meta},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": "subscriptions/listen",
        "authorization": f"Bearer {token}",
    }

    async def read() -> None:
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream("POST", gw.url, json=body, headers=headers) as response,
        ):
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                frame = json.loads(line.removeprefix("data:"))
                if frame.get("method") == "notifications/subscriptions/acknowledged":
                    listener.acknowledged.set()
                elif frame.get("method") == "notifications/tasks":
                    await listener.tasks.put(frame["params"])

    reader = asyncio.create_task(read())
    try:
        async with asyncio.timeout(20):
            await listener.acknowledged.wait()
        yield listener
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _until_terminal(listener: Listener, task_id: str) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            params = await listener.tasks.get()
            assert params["taskId"] == task_id
            if params["status"] in {"completed", "failed", "cancelled"}:
                return params


async def test_a_listen_stream_hears_its_own_tasks_status_with_the_result_and_nobody_elses(
    gw: RunningGateway,
) -> None:
    alice, bob = Caller(gw, "alice"), Caller(gw, "bob")
    async with listening(gw, "alice", 7) as heard_by_alice, listening(gw, "bob", 8) as heard_by_bob:
        created = await alice.call("sleep", {"ms": 200})
        done = await _until_terminal(heard_by_alice, created["taskId"])
        assert done["status"] == "completed"
        assert done["result"]["structuredContent"] == {"slept_ms": 200}
        assert done["_meta"]["io.modelcontextprotocol/subscriptionId"] == 7
        own = await bob.call("sleep", {"ms": 0})
        first = await _until_terminal(heard_by_bob, own["taskId"])  # alice's would come first
        assert first["taskId"] == own["taskId"]


async def test_a_plan_tasks_end_is_notified_without_anyone_asking_for_it(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    plan = {"plan_id": "told", "tasks": [{"id": "nap", "tool_name": "sleep", "parameters": {"ms": 200}}]}
    assert not (await alice.call("create_plan", {"plan": plan})).get("isError")
    async with listening(gw, "alice", 9) as heard:
        created = await alice.call("execute_plan", {"plan_id": "told"})
        done = await _until_terminal(heard, created["taskId"])
    assert done["status"] == "completed"
    assert done["result"]["structuredContent"]["status"] == "succeeded"
