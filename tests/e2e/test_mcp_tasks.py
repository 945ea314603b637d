"""MCP tasks (io.modelcontextprotocol/tasks) on the embedded gateway with auth on, over the
2026-07-28 wire: a task-supporting tool called by a negotiating client answers a task at
once, tasks/get inlines its result, a cancel is recorded once, another subject's task id is
unknown, the ttl purges, and a client that did not negotiate gets sync calls and -32021."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.eventstore.sql import open_event_store
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.files import files_containing
from tests.support.tokens import good_token

PROTOCOL = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


@pytest.fixture
async def short_ttl(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(update={"task_ttl_ms": 1000})
    async with gateway(settings) as running:
        yield running


class Caller:
    """One subject speaking raw 2026-07-28 JSON-RPC, with or without the tasks extension."""

    def __init__(self, gw: RunningGateway, subject: str | None, *, tasks: bool = True) -> None:
        self._gw = gw
        self._token = None if subject is None else good_token(gw.runtime.settings, sub=subject)
        self._capabilities: dict[str, Any] = {"extensions": {TASKS: {}}} if tasks else {}

    async def post(self, method: str, params: dict[str, Any], name: str | None = None) -> httpx.Response:
        meta = {
            "io.modelcontextprotocol/protocolVersion": PROTOCOL,
            "io.modelcontextprotocol/clientCapabilities": self._capabilities,
        }
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-protocol-version": PROTOCOL,
            "mcp-method": method,
        }
        if self._token is not None:
            headers["authorization"] = f"Bearer {self._token}"
        if name is not None:
            headers["mcp-name"] = name
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(self._gw.url, json=body, headers=headers)

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        response = await self.post("tools/call", {"name": tool, "arguments": arguments}, tool)
        result: dict[str, Any] = response.json()["result"]
        return result

    async def task(self, method: str, task_id: str) -> dict[str, Any]:
        """The JSON-RPC body (result or error) of a tasks/* request."""
        body: dict[str, Any] = (await self.post(method, {"taskId": task_id}, task_id)).json()
        return body

    async def settled(self, task_id: str) -> dict[str, Any]:
        async with asyncio.timeout(20):
            while True:
                result: dict[str, Any] = (await self.task("tasks/get", task_id))["result"]
                if result["status"] in {"completed", "failed", "cancelled"}:
                    return result
                await asyncio.sleep(0.05)


async def _events(gw: RunningGateway, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    store = await open_event_store(gw.runtime.settings.store_url)
    try:
        return [
            (event.event_type, event.data)
            for event in await store.read_all(limit=100_000)
            if event.stream_id.endswith(f":{task_id}")
        ]
    finally:
        await store.close()


async def test_a_task_supporting_tool_answers_a_task_at_once_and_tasks_get_inlines_its_result(
    gw: RunningGateway,
) -> None:
    alice = Caller(gw, "alice")
    created = await alice.call("sleep", {"ms": 300})
    assert created["resultType"] == "task"
    assert created["status"] == "working"
    assert created["ttlMs"] == gw.runtime.settings.task_ttl_ms
    assert "result" not in created
    assert "task" not in created
    first = await alice.task("tasks/get", created["taskId"])
    assert first["result"]["taskId"] == created["taskId"]
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed"
    assert done["resultType"] == "complete"
    assert done["result"]["structuredContent"] == {"slept_ms": 300}
    types = [event_type for event_type, _ in await _events(gw, created["taskId"])]
    assert types == ["McpTaskCreated", "McpTaskCompleted"]


async def test_a_task_result_is_sealed_in_the_store(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    created = await alice.call("sleep", {"ms": 0})
    await alice.settled(created["taskId"])
    recorded = dict(await _events(gw, created["taskId"]))
    assert "slept_ms" not in json.dumps(recorded["McpTaskCompleted"]["result"])


async def test_another_subjects_task_id_answers_as_an_unknown_task(gw: RunningGateway) -> None:
    alice, bob = Caller(gw, "alice"), Caller(gw, "bob")
    created = await alice.call("sleep", {"ms": 0})
    stolen = await bob.task("tasks/get", created["taskId"])
    unknown = await bob.task("tasks/get", "no-such-task")
    assert stolen["error"]["code"] == -32602
    assert stolen["error"]["message"] == unknown["error"]["message"]
    cancel = await bob.task("tasks/cancel", created["taskId"])
    assert cancel["error"]["code"] == -32602
    assert (await alice.settled(created["taskId"]))["status"] == "completed"


async def test_a_cancelled_task_stays_cancelled_and_its_cancellation_is_recorded_once(
    gw: RunningGateway,
) -> None:
    alice = Caller(gw, "alice")
    created = await alice.call("sleep", {"ms": 1500})
    ack = await alice.task("tasks/cancel", created["taskId"])
    assert ack["result"].keys() <= {"resultType", "_meta"}
    assert ack["result"]["resultType"] == "complete"
    again = await alice.task("tasks/cancel", created["taskId"])
    assert again["result"].keys() <= {"resultType", "_meta"}
    assert again["result"]["resultType"] == "complete"
    assert (await alice.settled(created["taskId"]))["status"] == "cancelled"
    await asyncio.sleep(2)  # the tool's own outcome arrives after the cancellation
    assert (await alice.task("tasks/get", created["taskId"]))["result"]["status"] == "cancelled"
    types = [event_type for event_type, _ in await _events(gw, created["taskId"])]
    assert types == ["McpTaskCreated", "McpTaskCancelled"]


async def test_a_task_is_purged_when_its_ttl_has_run_out(short_ttl: RunningGateway) -> None:
    alice = Caller(short_ttl, "alice")
    created = await alice.call("sleep", {"ms": 0})
    assert created["ttlMs"] == 1000
    assert (await alice.settled(created["taskId"]))["status"] == "completed"
    await asyncio.sleep(1.1)
    assert (await alice.task("tasks/get", created["taskId"]))["error"]["code"] == -32602


async def test_a_client_without_the_extension_gets_sync_calls_and_32021_for_task_methods(
    gw: RunningGateway,
) -> None:
    plain = Caller(gw, "alice", tasks=False)
    result = await plain.call("sleep", {"ms": 0})
    assert result["resultType"] == "complete"
    assert "taskId" not in result
    response = await plain.post("tasks/get", {"taskId": "anything"}, "anything")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32021


async def test_sync_only_tools_stay_sync_and_removed_v1_methods_are_not_found(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    opened = await alice.call("session_open", {})
    assert opened["resultType"] == "complete"
    assert "taskId" not in opened
    assert (await alice.post("tasks/list", {})).json()["error"]["code"] == -32601
    assert (await alice.task("tasks/result", "x"))["error"]["code"] == -32601


async def test_tools_list_declares_task_support(gw: RunningGateway) -> None:
    response = await Caller(gw, "alice").post("tools/list", {})
    tools = {tool["name"]: tool for tool in response.json()["result"]["tools"]}
    assert tools["sleep"]["_meta"][TASKS] == {"taskSupport": "optional"}
    assert TASKS not in tools["session_open"].get("_meta", {})


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running:
        yield running


async def test_erasure_leaves_nothing_of_a_task_result_readable(
    local: RunningGateway, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    me = Caller(local, None)
    created = await me.call("echo", {"text": marker})
    assert marker in json.dumps((await me.settled(created["taskId"]))["result"])
    assert files_containing(tmp_path, marker) == []  # sealed from the start
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{local.url.removesuffix('/mcp')}/admin/erasures",
            json={"subject": local.runtime.settings.local_subject},
        )
    assert answer.json()["status"] == "completed"
    after = await me.task("tasks/get", created["taskId"])
    assert marker not in json.dumps(after)
    assert files_containing(tmp_path, marker) == []
