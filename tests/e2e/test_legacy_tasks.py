"""The experimental tasks of 2025-11-25 (SEP-1686) with the SDK's 2025-11-25 client, on the
embedded gateway with auth on: capabilities.tasks at initialize (never on 2026-07-28's
server/discover), execution.taskSupport, tools/call with params.task, tasks/get, tasks/result,
tasks/list, tasks/cancel, notifications/tasks/status, and another subject's task ids unknown
to every method. The SDK has no task API of its own: tasks/* go through send_request with its
types. Its 2025-11-25 client holds every tools/call answer to CallToolResult, so it cannot
receive a CreateTaskResult: the task-asking tools/call goes over a raw 2025-11-25 session of
the same subject (tasks belong to the subject, not to a session)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.extension import ClientExtension, NotificationBinding
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from mcp_ledger.mcp_api.tasks.legacy import PAGE_SIZE, RELATED_TASK
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

WAIT_SECONDS = 20.0

pytestmark = pytest.mark.filterwarnings(f"ignore::{MCPDeprecationWarning.__module__}.MCPDeprecationWarning")


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


class _Heard(ClientExtension):
    """What a client's GET stream brings: log lines (message_handler) and task statuses. The
    SDK's 2025-11-25 tables leave notifications/tasks/status out, so it reaches a client only
    through a notification binding (its extension id is this test's, not the tasks one)."""

    identifier = "test.mcp-ledger/task-status"

    def __init__(self) -> None:
        self.statuses: list[types.TaskStatusNotificationParams] = []
        self.logs = 0
        self.changed = asyncio.Event()

    def notifications(self) -> Sequence[NotificationBinding[Any]]:
        return [
            NotificationBinding(
                method="notifications/tasks/status",
                params_type=types.TaskStatusNotificationParams,
                handler=self._status,
            )
        ]

    async def _status(self, params: types.TaskStatusNotificationParams) -> None:
        self.statuses.append(params)
        self.changed.set()

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, types.LoggingMessageNotification):
            self.logs += 1
        self.changed.set()

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while not check():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def _client(gw: RunningGateway, subject: str, heard: _Heard | None = None) -> AsyncIterator[Client]:
    token = good_token(gw.runtime.settings, sub=subject)
    heard = heard or _Heard()
    async with (
        httpx2.AsyncClient(timeout=30.0, headers={"authorization": f"Bearer {token}"}) as http,
        Client(
            streamable_http_client(gw.url, http_client=http),
            mode="legacy",
            message_handler=heard,
            extensions=[heard],
        ) as client,
    ):
        yield client


class RawSession:
    """A 2025-11-25 Streamable HTTP session spoken as plain JSON-RPC (initialize first)."""

    def __init__(self, gw: RunningGateway, subject: str) -> None:
        self._url = gw.url
        self._headers = {
            "authorization": f"Bearer {good_token(gw.runtime.settings, sub=subject)}",
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }

    async def open(self) -> None:
        init = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        }
        answer = await self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        self._headers["mcp-session-id"] = answer.headers["mcp-session-id"]
        self._headers["mcp-protocol-version"] = "2025-11-25"
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _post(self, body: dict[str, object]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(self._url, json=body, headers=self._headers)

    async def call(self, params: types.CallToolRequestParams) -> dict[str, Any]:
        wire = params.model_dump(mode="json", by_alias=True, exclude_none=True)
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": wire}
        answer: dict[str, Any] = (await self._post(body)).json()
        return answer


async def _raw(gw: RunningGateway, subject: str) -> RawSession:
    raw = RawSession(gw, subject)
    await raw.open()
    return raw


async def _start(raw: RawSession, tool: str, arguments: dict[str, object]) -> types.Task:
    params = types.CallToolRequestParams(name=tool, arguments=arguments, task=types.TaskMetadata(ttl=60_000))
    return types.CreateTaskResult.model_validate((await raw.call(params))["result"]).task


async def _get(client: Client, task_id: str) -> types.GetTaskResult:
    request = types.GetTaskRequest(params=types.GetTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, types.GetTaskResult)


async def _result(client: Client, task_id: str) -> types.CallToolResult:
    request = types.GetTaskPayloadRequest(params=types.GetTaskPayloadRequestParams(task_id=task_id))
    return await client.session.send_request(request, types.CallToolResult)


async def _cancel(client: Client, task_id: str) -> types.CancelTaskResult:
    request = types.CancelTaskRequest(params=types.CancelTaskRequestParams(task_id=task_id))
    return await client.session.send_request(request, types.CancelTaskResult)


async def _list(client: Client, cursor: str | None = None) -> types.ListTasksResult:
    request = types.ListTasksRequest(params=types.PaginatedRequestParams(cursor=cursor))
    return await client.session.send_request(request, types.ListTasksResult)


async def test_initialize_advertises_tasks_and_tools_list_their_task_support(gw: RunningGateway) -> None:
    async with _client(gw, "alice") as client:
        tasks = client.server_capabilities.tasks
        assert tasks is not None
        assert tasks.list is not None
        assert tasks.cancel is not None
        assert tasks.requests is not None
        assert tasks.requests.tools is not None
        assert tasks.requests.tools.call is not None
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["sleep"].execution is not None
        assert listed["sleep"].execution.task_support == "optional"
        assert listed["session_open"].execution is None


async def test_server_discover_on_2026_07_28_has_no_tasks_capability(gw: RunningGateway) -> None:
    token = good_token(gw.runtime.settings, sub="alice")
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {
        "authorization": f"Bearer {token}",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "server/discover",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}
    async with httpx.AsyncClient(timeout=30) as http:
        answer = (await http.post(gw.url, json=body, headers=headers)).json()
    capabilities = answer["result"]["capabilities"]
    assert "tasks" not in capabilities
    assert "io.modelcontextprotocol/tasks" in capabilities["extensions"]


async def test_a_call_with_params_task_answers_a_task_and_tasks_result_waits_for_the_tools_result(
    gw: RunningGateway,
) -> None:
    raw = await _raw(gw, "alice")
    async with _client(gw, "alice") as client:
        task = await _start(raw, "sleep", {"ms": 500})
        assert task.status == "working"
        assert task.ttl == gw.runtime.settings.task_ttl_ms
        assert task.poll_interval is not None
        assert (await _get(client, task.task_id)).task_id == task.task_id
        result = await _result(client, task.task_id)  # blocks until the end
        assert result.structured_content == {"slept_ms": 500}
        assert result.meta is not None
        assert result.meta[RELATED_TASK] == {"taskId": task.task_id}
        assert (await _get(client, task.task_id)).status == "completed"


async def test_a_call_without_params_task_runs_synchronously(gw: RunningGateway) -> None:
    async with _client(gw, "alice") as client:
        result = await client.call_tool("sleep", {"ms": 0})
        assert result.structured_content == {"slept_ms": 0}


async def test_a_task_asked_of_a_tool_that_forbids_tasks_answers_method_not_found(gw: RunningGateway) -> None:
    raw = await _raw(gw, "alice")
    params = types.CallToolRequestParams(name="session_open", arguments={}, task=types.TaskMetadata())
    assert (await raw.call(params))["error"]["code"] == types.METHOD_NOT_FOUND


async def test_a_cancelled_task_answers_cancelled_and_cannot_be_cancelled_again(gw: RunningGateway) -> None:
    raw = await _raw(gw, "alice")
    async with _client(gw, "alice") as client:
        task = await _start(raw, "sleep", {"ms": 5000})
        cancelled = await _cancel(client, task.task_id)
        assert cancelled.status == "cancelled"
        assert (await _get(client, task.task_id)).status == "cancelled"
        with pytest.raises(MCPError) as again:
            await _cancel(client, task.task_id)
        assert again.value.error.code == types.INVALID_PARAMS
        with pytest.raises(MCPError) as no_result:
            await _result(client, task.task_id)
        assert no_result.value.error.code == types.INVALID_PARAMS


async def test_tasks_list_pages_through_the_callers_own_tasks_only(gw: RunningGateway) -> None:
    alice_raw, bob_raw = await _raw(gw, "alice"), await _raw(gw, "bob")
    async with _client(gw, "alice") as alice, _client(gw, "bob") as bob:
        mine = {(await _start(alice_raw, "sleep", {"ms": 0})).task_id for _ in range(PAGE_SIZE + 2)}
        theirs = (await _start(bob_raw, "sleep", {"ms": 0})).task_id
        first = await _list(alice)
        assert len(first.tasks) == PAGE_SIZE
        assert first.next_cursor is not None
        second = await _list(alice, first.next_cursor)
        assert second.next_cursor is None
        listed = [task.task_id for task in first.tasks + second.tasks]
        assert set(listed) == mine
        assert len(listed) == len(mine)
        assert [task.task_id for task in (await _list(bob)).tasks] == [theirs]
        with pytest.raises(MCPError) as bad:
            await _list(alice, "not-a-position")
        assert bad.value.error.code == types.INVALID_PARAMS


async def test_another_subjects_task_id_is_unknown_to_get_result_and_cancel(gw: RunningGateway) -> None:
    raw = await _raw(gw, "alice")
    async with _client(gw, "alice") as alice, _client(gw, "bob") as bob:
        task = await _start(raw, "sleep", {"ms": 1500})
        for ask in (_get, _result, _cancel):
            with pytest.raises(MCPError) as stolen:
                await ask(bob, task.task_id)
            with pytest.raises(MCPError) as unknown:
                await ask(bob, "no-such-task")
            assert stolen.value.error.code == types.INVALID_PARAMS
            assert stolen.value.error.message == unknown.value.error.message
        assert task.task_id not in [listed.task_id for listed in (await _list(bob)).tasks]
        assert (await _result(alice, task.task_id)).structured_content == {"slept_ms": 1500}


async def test_the_owners_get_stream_hears_the_tasks_status_and_another_subjects_does_not(
    gw: RunningGateway,
) -> None:
    alice_heard, bob_heard = _Heard(), _Heard()
    alice_raw, bob_raw = await _raw(gw, "alice"), await _raw(gw, "bob")
    async with _client(gw, "alice", alice_heard) as alice, _client(gw, "bob", bob_heard) as bob:
        await alice.set_logging_level("info")
        await bob.set_logging_level("info")
        # The GET streams open beside the first requests: call until each hears a log line.
        async with asyncio.timeout(WAIT_SECONDS):
            while not (alice_heard.logs and bob_heard.logs):
                await alice.call_tool("note_set", {"key": "k", "value": 1})
                await bob.call_tool("note_set", {"key": "k", "value": 1})
                await asyncio.sleep(0.2)
        task = await _start(alice_raw, "sleep", {"ms": 200})
        await alice_heard.until(lambda: any(s.status == "completed" for s in alice_heard.statuses))
        assert {s.task_id for s in alice_heard.statuses} == {task.task_id}
        own = (await _start(bob_raw, "sleep", {"ms": 0})).task_id  # bob's own status comes after
        await bob_heard.until(lambda: any(s.task_id == own for s in bob_heard.statuses))
        assert {s.task_id for s in bob_heard.statuses} == {own}


async def test_execute_plan_with_params_task_is_the_plan_run_and_tasks_result_its_result(
    gw: RunningGateway,
) -> None:
    plan = {
        "plan_id": "walk",
        "tasks": [
            {"id": "hello", "tool_name": "echo", "parameters": {"text": "hello"}},
            {"id": "nap", "tool_name": "sleep", "parameters": {"ms": 300}, "dependencies": ["hello"]},
        ],
    }
    raw = await _raw(gw, "alice")
    async with _client(gw, "alice") as client:
        accepted = await client.call_tool("create_plan", {"plan": plan})
        assert not accepted.is_error
        task = await _start(raw, "execute_plan", {"plan_id": "walk"})
        assert task.status == "working"
        result = await _result(client, task.task_id)
        assert not result.is_error
        assert result.structured_content is not None
        assert result.structured_content["status"] == "succeeded"
        assert result.structured_content["tasks"]["hello"]["output"] == {"text": "hello"}
