"""The experimental tasks of 2025-11-25 (SEP-1686) for handshake-era clients, over the same
task streams as the extension (SEP-2663): only the shapes and the methods differ.

A 2025-11-25 session that did not declare the extension asks for a task with `params.task`
on tools/call and gets `{task: {...}}`; it has `tasks/get`, `tasks/result` (waits for the
end, bounded), `tasks/list` (its own tasks, paged) and `tasks/cancel`, and hears
`notifications/tasks/status` on its GET stream. `capabilities.tasks` is advertised in the
`initialize` answer only: 2026-07-28's server/discover never carries it. Every lookup is the
extension's (the caller's own stream, ttl and purge checked), so another subject's task id
answers as unknown here too.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import REQUEST_TIMEOUT
from mcp_types.methods import serialize_server_result
from pydantic import BaseModel

from mcp_ledger.domain.streams import subject_tag
from mcp_ledger.domain.tasks.state import TaskState
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.tasks.negotiation import handshake_era, negotiated
from mcp_ledger.mcp_api.tasks.ports import TaskIndex
from mcp_ledger.mcp_api.tasks.service import TaskService, UnknownTaskError
from mcp_ledger.mcp_api.tasks.wire import iso

RELATED_TASK = "io.modelcontextprotocol/related-task"
PAGE_SIZE = 50
RESULT_WAIT_S = 120.0
"""How long one tasks/result waits for the end before answering -32001 (ask again)."""

SERVER_TASKS = types.ServerTasksCapability(
    list=types.TasksListCapability(),
    cancel=types.TasksCancelCapability(),
    requests=types.ServerTasksRequestsCapability(
        tools=types.TasksToolsCapability(call=types.TasksCallCapability())
    ),
)


class HandshakeTasksServer(Server[Any]):
    """The lowlevel server whose `initialize` answer (2025-11-25 only) carries
    `capabilities.tasks`; server/discover builds its capabilities without it."""

    def create_initialization_options(
        self,
        notification_options: Any = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = super().create_initialization_options(
            notification_options, experimental_capabilities, extensions
        )
        capabilities = options.capabilities.model_copy(update={"tasks": SERVER_TASKS})
        return options.model_copy(update={"capabilities": capabilities})


TASK_CALL = "ledger/tools/call-as-task"
"""Where a 2025-11-25 tools/call that may be answered with a task is routed (the same
tools/call handler): the SDK holds a 2025-11-25 tools/call answer to CallToolResult, and the
answer may be SEP-1686's or SEP-2663's CreateTaskResult, which a method outside the SDK's
per-version surface may return (`call_answer` gives a plain result tools/call's own shape)."""


async def route_task_calls(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Server middleware: a 2025-11-25 tools/call that asks for a task (`params.task`), or
    whose request or session negotiated the extension, goes to TASK_CALL."""
    if ctx.method != "tools/call" or not handshake_era(ctx):
        return await call_next(ctx)
    asks = isinstance(ctx.params, dict) and ctx.params.get("task") is not None
    may_be_task = asks or negotiated(ctx, ctx.meta)
    return await call_next(replace(ctx, method=TASK_CALL) if may_be_task else ctx)


def call_answer(answer: BaseModel, protocol_version: str) -> BaseModel | dict[str, Any]:
    """TASK_CALL's answer: a task as it is; a tool result as tools/call of that protocol
    version answers it (the SDK's own shaping, which the internal method skips)."""
    if not isinstance(answer, types.CallToolResult):
        return answer
    dumped = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
    shaped: dict[str, Any] = serialize_server_result("tools/call", protocol_version, dumped)
    return shaped


def legacy_runs_as_task(spec: ToolSpec, *, asked: bool) -> bool:
    """SEP-1686: the client asks for a task with `params.task`; a task asked of a tool that
    forbids them, or a `required` tool called without one, answers -32601.

    Raises:
        MCPError: -32601, as above.
    """
    if asked and spec.task_support == "forbidden":
        raise MCPError(types.METHOD_NOT_FOUND, f"tool {spec.name} does not support task execution")
    if not asked and spec.task_support == "required":
        raise MCPError(types.METHOD_NOT_FOUND, f"tool {spec.name} runs only as a task (params.task)")
    return asked


def unknown(task_id: str) -> MCPError:
    return MCPError(types.INVALID_PARAMS, "unknown task", data={"taskId": task_id})


def task_of(state: TaskState) -> dict[str, Any]:
    """The SEP-1686 `Task` fields of a task."""
    return {
        "task_id": state.task_id,
        "status": state.status,
        "status_message": state.status_message or None,
        "created_at": iso(state.created_at),
        "last_updated_at": iso(state.updated_at),
        "ttl": state.ttl_ms,
        "poll_interval": state.poll_interval_ms,
    }


def created(state: TaskState) -> types.CreateTaskResult:
    return types.CreateTaskResult(task=types.Task(**task_of(state)))


def _cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise MCPError(types.INVALID_PARAMS, "invalid cursor")
    return int(cursor)


class LegacyTasks:
    """tasks/get, tasks/result, tasks/list, tasks/cancel and status notifications, 2025-11-25."""

    def __init__(
        self, service: TaskService, index: TaskIndex | None, *, result_wait_s: float = RESULT_WAIT_S
    ) -> None:
        self._service = service
        self._index = index
        self._wait_s = result_wait_s

    async def get(self, identity: Identity, task_id: str) -> types.GetTaskResult:
        try:
            return types.GetTaskResult(**task_of(await self._service.get(identity, task_id)))
        except UnknownTaskError as error:
            raise unknown(task_id) from error

    async def result(self, identity: Identity, task_id: str) -> types.CallToolResult:
        """The tool's result once the task ended (a tool error is a result with isError); a
        failed task answers its JSON-RPC error, a cancelled one -32602."""
        state = await self._ended(identity, task_id)
        if state.status == "failed":
            error = state.error or {}
            raise MCPError(int(error.get("code", types.INTERNAL_ERROR)), str(error.get("message", "failed")))
        if state.status == "cancelled" or state.result is None:
            raise MCPError(types.INVALID_PARAMS, f"task {task_id} was {state.status}; it has no result")
        meta = {**(state.result.get("_meta") or {}), RELATED_TASK: {"taskId": task_id}}
        return types.CallToolResult.model_validate({**state.result, "_meta": meta})

    async def _ended(self, identity: Identity, task_id: str) -> TaskState:
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                state = await self._service.get(identity, task_id)
            except UnknownTaskError as error:
                raise unknown(task_id) from error
            left = deadline - time.monotonic()
            if state.terminal:
                return state
            if left <= 0:
                raise MCPError(
                    REQUEST_TIMEOUT, "the task is still working; ask again", data={"taskId": task_id}
                )
            await asyncio.sleep(min(state.poll_interval_ms / 1000, left))

    async def list(self, identity: Identity, cursor: str | None) -> types.ListTasksResult:
        """The caller's live tasks, oldest first; the cursor is the last creation's position
        (any value a caller sends is only ever looked up under that caller)."""
        if self._index is None:
            return types.ListTasksResult(tasks=[])
        found = await self._index.created(identity.tenant, identity.subject, _cursor(cursor), PAGE_SIZE)
        tasks = []
        for _, task_id in found:
            try:
                tasks.append(types.Task(**task_of(await self._service.get(identity, task_id))))
            except UnknownTaskError:
                continue  # expired or purged: listed no more
        more = str(found[-1][0]) if len(found) == PAGE_SIZE else None
        return types.ListTasksResult(tasks=tasks, next_cursor=more)

    async def cancel(self, identity: Identity, task_id: str) -> types.CancelTaskResult:
        try:
            state = await self._service.get(identity, task_id)
            if state.terminal:
                raise MCPError(
                    types.INVALID_PARAMS, f"Cannot cancel task: already in terminal status {state.status}"
                )
            state = await self._service.cancel(identity, task_id)
        except UnknownTaskError as error:
            raise unknown(task_id) from error
        return types.CancelTaskResult(**task_of(state))

    async def status(self, tenant: str, subject: str, owner: str, task_id: str) -> dict[str, Any] | None:
        """`notifications/tasks/status` of a task for a GET stream of (tenant, subject): None
        unless the task is that subject's own (owner tag first, then the lookup as theirs)."""
        if owner != subject_tag(subject):
            return None
        try:
            state = await self._service.get(Identity(tenant, subject), task_id)
        except UnknownTaskError:
            return None
        params = types.TaskStatusNotificationParams(**task_of(state))
        notification = types.TaskStatusNotification(params=params)
        return {"jsonrpc": "2.0", **notification.model_dump(mode="json", by_alias=True, exclude_none=True)}
