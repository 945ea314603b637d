"""The tasks extension (SEP-2663) negotiated by a 2025-11-25 session, with the SDK's
2025-11-25 client over Streamable HTTP on the embedded gateway (auth on): declared for the
session at `initialize` (`extensions`), or for one request in its `_meta`. Either way a
task-supporting tool answers a flat CreateTaskResult, and tasks/get, tasks/cancel and
tasks/update answer SEP-2663's shapes in that session; a session that declared nothing keeps
SEP-1686 (tests/e2e/test_legacy_tasks.py).

The SDK's 2025-11-25 client holds every tools/call answer to CallToolResult (its result claims
are for 2026-07-28 only), so the tools/call goes as plain JSON-RPC over the SDK client's own
session (its Mcp-Session-Id, read off the SDK's HTTP client); tasks/* go through the SDK's
send_request with the extension's shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from mcp_ledger.mcp_api.tasks.wire import DetailedTask, UpdateTaskRequestParams
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

TASKS = "io.modelcontextprotocol/tasks"
PER_REQUEST: dict[str, Any] = {"io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}}}

pytestmark = pytest.mark.filterwarnings(f"ignore::{MCPDeprecationWarning.__module__}.MCPDeprecationWarning")


class UpdateTaskRequest(types.Request[UpdateTaskRequestParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateTaskRequestParams


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


@dataclass
class Agent:
    """An SDK 2025-11-25 client, and plain JSON-RPC tools/call on the same session."""

    client: Client
    url: str
    headers: dict[str, str]
    session: dict[str, str] = field(default_factory=dict)

    async def call(
        self, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None, **extra: Any
    ) -> Any:
        """The JSON-RPC answer (result or error) of a tools/call in this session."""
        params: dict[str, Any] = {"name": tool, "arguments": arguments, **extra}
        if meta is not None:
            params["_meta"] = meta
        headers = {**self.headers, "mcp-session-id": self.session["id"], "mcp-protocol-version": "2025-11-25"}
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
        async with httpx.AsyncClient(timeout=30) as http:
            return (await http.post(self.url, json=body, headers=headers)).json()

    async def get(self, task_id: str, meta: dict[str, Any] | None = None) -> DetailedTask:
        params = types.GetTaskRequestParams(task_id=task_id, _meta=meta)
        return await self.client.session.send_request(types.GetTaskRequest(params=params), DetailedTask)

    async def settled(self, task_id: str, meta: dict[str, Any] | None = None) -> DetailedTask:
        async with asyncio.timeout(20):
            while (task := await self.get(task_id, meta)).status not in {"completed", "failed", "cancelled"}:
                await asyncio.sleep(0.05)
        return task

    async def cancel(self, task_id: str) -> types.EmptyResult:
        request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id))
        return await self.client.session.send_request(request, types.EmptyResult)

    async def update(self, task_id: str, responses: dict[str, Any]) -> types.EmptyResult:
        params = UpdateTaskRequestParams(task_id=task_id, input_responses=responses)
        return await self.client.session.send_request(UpdateTaskRequest(params=params), types.EmptyResult)


@asynccontextmanager
async def _agent(gw: RunningGateway, subject: str, *, declares: bool) -> AsyncIterator[Agent]:
    headers = {
        "authorization": f"Bearer {good_token(gw.runtime.settings, sub=subject)}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    session: dict[str, str] = {}

    async def remember(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            session["id"] = response.headers["mcp-session-id"]

    hooks = {"response": [remember]}
    async with (
        httpx2.AsyncClient(timeout=30.0, headers=headers, event_hooks=hooks) as http,
        Client(
            streamable_http_client(gw.url, http_client=http),
            mode="legacy",
            extensions=[advertise(TASKS)] if declares else None,
        ) as client,
    ):
        assert client.protocol_version == "2025-11-25"
        yield Agent(client, gw.url, headers, session)


async def test_a_session_that_declared_the_extension_at_initialize_gets_sep_2663_tasks(
    gw: RunningGateway,
) -> None:
    async with _agent(gw, "alice", declares=True) as alice:
        created = (await alice.call("sleep", {"ms": 300}))["result"]
        assert created["resultType"] == "task"
        assert created["status"] == "working"
        assert created["ttlMs"] == gw.runtime.settings.task_ttl_ms
        assert "task" not in created
        assert (await alice.get(created["taskId"])).task_id == created["taskId"]
        done = await alice.settled(created["taskId"])
        assert done.status == "completed"
        assert done.result_type == "complete"
        assert done.result is not None
        assert done.result["structuredContent"] == {"slept_ms": 300}


async def test_the_declared_sessions_cancel_and_update_answer_empty_acks(gw: RunningGateway) -> None:
    async with _agent(gw, "alice", declares=True) as alice:
        created = (await alice.call("sleep", {"ms": 5000}))["result"]
        ack = await alice.update(created["taskId"], {"no-such-request": {"action": "accept"}})
        assert ack.result_type == "complete"
        ack = await alice.cancel(created["taskId"])
        assert ack.result_type == "complete"
        assert (await alice.settled(created["taskId"])).status == "cancelled"
        assert (await alice.cancel(created["taskId"])).result_type == "complete"  # idempotent


async def test_the_declared_sessions_sync_tools_answer_a_plain_call_tool_result(gw: RunningGateway) -> None:
    async with _agent(gw, "alice", declares=True) as alice:
        answer = await alice.call("note_set", {"key": "k", "value": 1})
        assert "error" not in answer
        assert answer["result"]["isError"] is False
        assert "resultType" not in answer["result"]  # 2025-11-25's own CallToolResult
        assert (await alice.client.call_tool("note_get", {"key": "k"})).is_error is False


async def test_a_per_request_declaration_gets_a_task_in_a_session_that_declared_nothing(
    gw: RunningGateway,
) -> None:
    async with _agent(gw, "alice", declares=False) as alice:
        created = (await alice.call("sleep", {"ms": 0}, PER_REQUEST))["result"]
        assert created["resultType"] == "task"
        done = await alice.settled(created["taskId"], PER_REQUEST)
        assert done.result is not None
        assert done.result["structuredContent"] == {"slept_ms": 0}
        synchronous = await alice.client.call_tool("sleep", {"ms": 0})  # no declaration: no task
        assert synchronous.structured_content == {"slept_ms": 0}


async def test_another_subjects_declared_session_finds_no_task_of_alices(gw: RunningGateway) -> None:
    async with _agent(gw, "alice", declares=True) as alice, _agent(gw, "bob", declares=True) as bob:
        created = (await alice.call("sleep", {"ms": 1000}))["result"]
        for ask in (bob.get, bob.cancel):
            with pytest.raises(MCPError) as stolen:
                await ask(created["taskId"])
            with pytest.raises(MCPError) as unknown:
                await ask("no-such-task")
            assert stolen.value.error.code == types.INVALID_PARAMS
            assert stolen.value.error.message == unknown.value.error.message
        assert (await alice.settled(created["taskId"])).status == "completed"


async def test_a_session_that_declared_nothing_still_gets_sep_1686_tasks(gw: RunningGateway) -> None:
    async with _agent(gw, "alice", declares=False) as alice:
        plain = await alice.call("sleep", {"ms": 0})
        assert "taskId" not in plain["result"]  # no params.task, no declaration: synchronous
        legacy = await alice.call("sleep", {"ms": 0}, task={"ttl": 60_000})
        task = types.CreateTaskResult.model_validate(legacy["result"]).task
        request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task.task_id))
        got = await alice.client.session.send_request(request, types.GetTaskResult)
        assert got.task_id == task.task_id
