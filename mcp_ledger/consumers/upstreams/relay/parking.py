"""A task's upstream call parked for input: the worker side of `input_required` and tasks/update.

When the upstream of a task's call asks its client for something (an elicitation or sampling
request, or a whole input_required round), the worker holding the call does not ask the
agent directly: it records the requests on the task's stream (`McpTaskInputRequired`, sealed
with the task's and the subject's keys) under keys it mints (unguessable, one per request),
so tasks/get on any replica shows `input_required` with them. The owner's tasks/update, on
any replica, publishes each answer on the reply topic under its key, headed by the
authenticated tenant and subject; the back channel (relay/backchannel.py) hands it to the
open request only for that tenant and subject. When every request of the batch is answered
the upstream gets its answers and the call goes on.

The wait is bounded by `wait_s` (LEDGER_TASK_INPUT_WAIT_S): past it the task is recorded as
failed with that reason, and the upstream hears an error. A worker that dies while parked
takes its open requests with it; the redelivered command finds its task parked and fails it
(`taken_over`) instead of running the tool again under stale keys, and a task nobody fails
is failed by the next tasks/get once its deadline is past (mcp_api/tasks/outcomes.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from mcp_types import ErrorData

from mcp_ledger.consumers.tasks.log import StoredTaskLog
from mcp_ledger.consumers.upstreams.relay.backchannel import (
    AgentRefusedError,
    AgentRoundError,
    BusBackChannel,
    result_of,
)
from mcp_ledger.consumers.upstreams.relay.rounds import AskRound
from mcp_ledger.consumers.upstreams.relay.routing import InputSink
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.tasks.events import McpTaskFailed, McpTaskInputRequired
from mcp_ledger.domain.tasks.state import TaskConflictError, TaskState, fold

log = logging.getLogger(__name__)

NOT_ANSWERED = -32001
"""The JSON-RPC code of a failed task whose input never came."""
_RETRIES = 5
KEY_BYTES = 18


class TaskInputError(Exception):
    """The task's input will not come: its wait ran out, or the task ended meanwhile."""


def expired_message(wait_s: float) -> str:
    return f"no answer to the task's input requests within {wait_s:g}s (LEDGER_TASK_INPUT_WAIT_S)"


TAKEN_OVER = (
    "the worker holding this task's upstream call stopped while the task waited for input; "
    "its requests and the upstream call are lost, so the task is failed rather than run again"
)


class TaskInputs:
    """Parks a task's call on its stream until the owner's tasks/update answers it."""

    def __init__(
        self,
        tasks: StoredTaskLog,
        channel: BusBackChannel,
        *,
        wait_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks = tasks
        self._channel = channel
        self._clock = clock
        self.wait_s = wait_s

    async def ask(self, command: CallTool, requests: dict[str, Any]) -> dict[str, Any]:
        """The owner's answers, keyed as `requests` (each a `{method, params}` request).

        Raises:
            TaskInputError: no answer within wait_s (the task is failed), or the task ended.
        """
        minted = {secrets.token_urlsafe(KEY_BYTES): key for key in requests}
        answers = {request_id: self._channel.expect(command, request_id) for request_id in minted}
        try:
            now = self._clock()
            parked = McpTaskInputRequired(
                requests={request_id: requests[key] for request_id, key in minted.items()},
                expires_at=now + self.wait_s,
                changed_at=now,
            )
            if not await self._append(command, parked):
                raise TaskInputError("the task ended before its input was asked for")
            try:
                async with asyncio.timeout(self.wait_s):
                    await asyncio.gather(*answers.values())
            except TimeoutError:
                message = expired_message(self.wait_s)
                await self._append(
                    command, McpTaskFailed(code=NOT_ANSWERED, message=message, failed_at=self._clock())
                )
                raise TaskInputError(message) from None
        finally:
            for request_id in minted:
                self._channel.forget(request_id)
        return {minted[request_id]: result_of(answer.result()) for request_id, answer in answers.items()}

    def round_asker(self, command: CallTool) -> AskRound:
        """A task's input_required round (rounds.py), parked until tasks/update answers it all."""

        async def ask(requests: dict[str, Any]) -> dict[str, Any]:
            try:
                return await self.ask(command, requests)
            except TaskInputError as error:
                raise AgentRoundError(NOT_ANSWERED, str(error)) from None
            except AgentRefusedError as refused:
                raise AgentRoundError(refused.code, refused.message, refused.data) from None

        return ask

    def request_asker(self, command: CallTool) -> InputSink:
        """A task's upstream request to its client, parked until tasks/update answers it."""

        async def ask(method: str, params: dict[str, Any] | None) -> dict[str, Any] | ErrorData:
            request: dict[str, Any] = {"method": method}
            if params is not None:
                request["params"] = params
            try:
                answer = (await self.ask(command, {method: request}))[method]
            except TaskInputError as error:
                return ErrorData(code=NOT_ANSWERED, message=str(error))
            except AgentRefusedError as refused:
                return ErrorData(code=refused.code, message=refused.message, data=refused.data)
            return answer if isinstance(answer, dict) else {}

        return ask

    async def taken_over(self, command: CallTool) -> bool:
        """Whether this command's task was parked by an earlier run of it (a worker that
        stopped): then the task is failed here, once, and the tool must not run again."""
        if command.task_id is None:
            return False
        state = await self._state(command)
        if state is None or state[1].status != "input_required":
            return False
        await self._append(
            command, McpTaskFailed(code=NOT_ANSWERED, message=TAKEN_OVER, failed_at=self._clock())
        )
        return True

    async def _state(self, command: CallTool) -> tuple[int, TaskState] | None:
        assert command.task_id is not None
        version, events = await self._tasks.load(command.tenant, command.subject, command.task_id)
        state = fold(events)
        return None if state is None or state.subject != command.subject else (version, state)

    async def _append(self, command: CallTool, event: DomainEvent) -> bool:
        """Append to the command's task unless it has ended; False if it has (or is gone)."""
        assert command.task_id is not None
        for _ in range(_RETRIES):
            found = await self._state(command)
            if found is None or found[1].terminal or found[1].purged:
                return False
            try:
                await self._tasks.append(
                    command.tenant,
                    command.subject,
                    command.task_id,
                    found[0],
                    [event],
                    command_id=command.command_id,
                )
            except TaskConflictError:
                continue
            return True
        log.warning(
            "task %s: %s not recorded, too many concurrent writers", command.task_id, type(event).__name__
        )
        return False
