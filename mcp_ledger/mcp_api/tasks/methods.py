"""The tasks extension's request methods on the lowlevel server, and the tools/call hook.

Every method is gated on negotiation: a request of a client that declared the extension
neither for its session nor in its own `_meta` gets -32021 (MissingRequiredClientCapability;
HTTP 400 on 2026-07-28). tasks/result and tasks/list are not registered: SEP-2663 removed
them, so the SDK answers -32601. An unknown, purged or foreign task id answers -32602 with
the same message, so nobody learns whether another subject's task exists.

A 2025-11-25 session negotiates for all its requests at `initialize` or for one request in
its `_meta` (mcp_api/tasks/negotiation.py) and then gets the same SEP-2663 surface. One that
did not gets the experimental tasks of its own spec instead (SEP-1686,
mcp_api/tasks/legacy.py): tasks/result and tasks/list are served to it alone, and a call is a
task when it asks with `params.task`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import MISSING_REQUIRED_CLIENT_CAPABILITY

from mcp_ledger.domain.commands import CallTool, ExecutePlan
from mcp_ledger.domain.tasks.state import TaskRequiredError, runs_as_task
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import BadSessionHeaderError, Identity, session_from_headers
from mcp_ledger.mcp_api.tasks.inputs import InvalidResponsesError
from mcp_ledger.mcp_api.tasks.legacy import (
    TASK_CALL,
    LegacyTasks,
    call_answer,
    created,
    legacy_runs_as_task,
    route_task_calls,
)
from mcp_ledger.mcp_api.tasks.negotiation import SessionNegotiation, handshake_era, negotiated
from mcp_ledger.mcp_api.tasks.ports import TaskIndex
from mcp_ledger.mcp_api.tasks.service import TaskService, UnknownTaskError
from mcp_ledger.mcp_api.tasks.wire import (
    TASKS_EXTENSION,
    CreateTaskResult,
    DetailedTask,
    TaskNotification,
    UpdateTaskRequestParams,
    created_result,
    detailed,
    task_notification,
)
from mcp_ledger.mcp_api.transport.sessions import TransportSessions

IdentityOf = Callable[[ServerRequestContext[Any]], Identity]
CallHandler = Callable[[ServerRequestContext[Any], types.CallToolRequestParams], Awaitable[Any]]
_MISSING = types.ClientCapabilities(extensions={TASKS_EXTENSION: {}})


def _missing_extension(message: str) -> MCPError:
    data = types.MissingRequiredClientCapabilityErrorData(required_capabilities=_MISSING)
    return MCPError(
        MISSING_REQUIRED_CLIENT_CAPABILITY, message, data=data.model_dump(by_alias=True, exclude_none=True)
    )


def _unknown(task_id: str) -> MCPError:
    return MCPError(types.INVALID_PARAMS, "unknown task", data={"taskId": task_id})


def _removed(method: str) -> MCPError:
    """SEP-2663 removed the method: only 2025-11-25 sessions without the extension have it."""
    return MCPError(types.METHOD_NOT_FOUND, f"Method not found: {method}")


class TaskMethods:
    """tasks/get, tasks/update, tasks/cancel, and the decision whether a call is a task."""

    def __init__(
        self,
        service: TaskService,
        index: TaskIndex | None = None,
        sessions: TransportSessions | None = None,
    ) -> None:
        self._service = service
        self.legacy = LegacyTasks(service, index)
        self._negotiation = SessionNegotiation(sessions)
        self._identity_of: IdentityOf | None = None

    def register(self, server: Server[Any], identity_of: IdentityOf, call_tool: CallHandler) -> None:
        """Advertise the extension and serve its methods (callers named by `identity_of`); a
        2025-11-25 tools/call that may be answered with a task reaches `call_tool` by TASK_CALL."""
        self._identity_of = identity_of

        async def task_call(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> Any:
            return call_answer(await call_tool(ctx, params), ctx.session.protocol_version)

        # The session's own declaration first: the routing below decides by it.
        server.middleware.extend([self._negotiation, route_task_calls])
        server.add_request_handler(TASK_CALL, types.CallToolRequestParams, task_call)
        server.extensions[TASKS_EXTENSION] = {}
        server.add_request_handler("tasks/get", types.GetTaskRequestParams, self._get)
        server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, self._cancel)
        server.add_request_handler("tasks/update", UpdateTaskRequestParams, self._update)
        server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, self._result)
        server.add_request_handler("tasks/list", types.PaginatedRequestParams, self._list)

    def _legacy(self, ctx: ServerRequestContext[Any], meta: types.RequestParamsMeta | None) -> bool:
        """Whether this request speaks SEP-1686: a 2025-11-25 session without the extension."""
        return not negotiated(ctx, meta) and handshake_era(ctx)

    def as_task(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, spec: ToolSpec
    ) -> bool:
        """Whether this call runs as a task (the server decides; a legacy `task` param of
        the client changes nothing).

        Raises:
            MCPError: -32021, the tool requires a task and the client did not negotiate them.
        """
        if self._legacy(ctx, params.meta):
            return legacy_runs_as_task(spec, asked=params.task is not None)
        try:
            return runs_as_task(spec.task_support, negotiated(ctx, params.meta))
        except TaskRequiredError as error:
            raise _missing_extension(str(error)) from error

    async def start(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        identity: Identity,
        command: CallTool,
    ) -> CreateTaskResult | types.CreateTaskResult:
        state = await self._service.start(identity, command)
        return created(state) if self._legacy(ctx, params.meta) else created_result(state)

    async def start_plan(
        self, ctx: ServerRequestContext[Any], identity: Identity, params: types.CallToolRequestParams
    ) -> CreateTaskResult | types.CreateTaskResult:
        """execute_plan as a task: the task is the plan run (mcp_api/tasks/plans.py).

        Raises:
            MCPError: the request's session header is malformed.
        """
        try:
            session_id = session_from_headers(ctx.request)
        except BadSessionHeaderError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from error
        command = ExecutePlan(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=session_id,
            plan_id=str((params.arguments or {})["plan_id"]),
        )
        state = await self._service.start_plan(identity, command, params.name)
        return created(state) if self._legacy(ctx, params.meta) else created_result(state)

    def listening(self, ctx: ServerRequestContext[Any], meta: types.RequestParamsMeta | None) -> bool:
        """Whether a listen stream of this client hears task notifications (it negotiated)."""
        return negotiated(ctx, meta)

    async def notification(
        self, identity: Identity, task_id: str, meta: dict[str, Any]
    ) -> TaskNotification | None:
        """`notifications/tasks` for the caller's own task as it is now, None for a task
        that is not the caller's (or is gone): the same lookup as tasks/get."""
        try:
            return task_notification(await self._service.get(identity, task_id), meta)
        except UnknownTaskError:
            return None

    def _gate(
        self, ctx: ServerRequestContext[Any], meta: types.RequestParamsMeta | None, method: str
    ) -> Identity:
        if not negotiated(ctx, meta):
            raise _missing_extension(f"{method} needs the {TASKS_EXTENSION} extension")
        assert self._identity_of is not None, "register() first"
        return self._identity_of(ctx)

    async def _get(
        self, ctx: ServerRequestContext[Any], params: types.GetTaskRequestParams
    ) -> DetailedTask | types.GetTaskResult:
        if self._legacy(ctx, params.meta):
            return await self.legacy.get(self._identity(ctx), params.task_id)
        identity = self._gate(ctx, params.meta, "tasks/get")
        try:
            return detailed(await self._service.get(identity, params.task_id))
        except UnknownTaskError as error:
            raise _unknown(params.task_id) from error

    async def _cancel(
        self, ctx: ServerRequestContext[Any], params: types.CancelTaskRequestParams
    ) -> types.Result:
        if self._legacy(ctx, params.meta):
            return await self.legacy.cancel(self._identity(ctx), params.task_id)
        identity = self._gate(ctx, params.meta, "tasks/cancel")
        try:
            await self._service.cancel(identity, params.task_id)
        except UnknownTaskError as error:
            raise _unknown(params.task_id) from error
        return types.EmptyResult(result_type="complete")

    def _identity(self, ctx: ServerRequestContext[Any]) -> Identity:
        assert self._identity_of is not None, "register() first"
        return self._identity_of(ctx)

    async def _result(
        self, ctx: ServerRequestContext[Any], params: types.GetTaskPayloadRequestParams
    ) -> types.CallToolResult:
        if not self._legacy(ctx, params.meta):
            raise _removed("tasks/result")
        return await self.legacy.result(self._identity(ctx), params.task_id)

    async def _list(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListTasksResult:
        if not self._legacy(ctx, params.meta if params is not None else None):
            raise _removed("tasks/list")
        return await self.legacy.list(self._identity(ctx), params.cursor if params is not None else None)

    async def _update(self, ctx: ServerRequestContext[Any], params: UpdateTaskRequestParams) -> types.Result:
        """The owner's answers to a task parked as input_required, carried to the worker that
        holds its call; acked empty, as tasks/cancel (the state shows on the next tasks/get)."""
        identity = self._gate(ctx, params.meta, "tasks/update")
        try:
            await self._service.update(identity, params.task_id, params.input_responses)
        except UnknownTaskError as error:
            raise _unknown(params.task_id) from error
        except InvalidResponsesError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from error
        return types.EmptyResult(result_type="complete")
