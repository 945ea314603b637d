"""The task service: a call accepted as a task, its state from its stream, its end.

The task is created (its stream written) before the answer goes back, so a tasks/get right
after it resolves on any replica. The work is the ordinary CallTool command on the bus; this
replica waits for its outcome in the background and records it, and any replica that is
asked about a task still working looks the outcome up by the command's idempotency key, so
a replica that died while waiting loses nothing. Lookups are by the caller's own stream: a
task id of another subject names no stream of the caller and answers as unknown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

from mcp_ledger.crypto.ports import KeyStoreError
from mcp_ledger.domain.commands import CallTool, CancelPlan, ExecutePlan
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.streams import new_task_id
from mcp_ledger.domain.tasks.events import (
    McpTaskCancelled,
    McpTaskCreated,
    McpTaskFailed,
    McpTaskInputAnswered,
)
from mcp_ledger.domain.tasks.state import TaskState, fold
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.tasks.inputs import answerable
from mcp_ledger.mcp_api.tasks.outcomes import INTERNAL_ERROR, abandoned, completion
from mcp_ledger.mcp_api.tasks.plans import PlanRuns, plan_end, progress, refused
from mcp_ledger.mcp_api.tasks.ports import InputReplies, TaskConflictError, TaskLog
from mcp_ledger.producers.ports import BusError

log = logging.getLogger(__name__)

_RETRIES = 5


class UnknownTaskError(LookupError):
    """No task of that id for this caller (never theirs, another subject's, or purged)."""


def _owner(identity: Identity) -> tuple[str, str]:
    return identity.tenant, identity.subject


class TaskService:
    """Creates, reads, settles and cancels the caller's tasks."""

    def __init__(
        self,
        log_: TaskLog,
        gateway: CommandGateway,
        *,
        ttl_ms: int,
        poll_interval_ms: int = 500,
        clock: Callable[[], float] = time.time,
        plans: PlanRuns | None = None,
        replies: InputReplies | None = None,
        settle_s: float = 60.0,
    ) -> None:
        self._settle_s = settle_s
        self._replies = replies
        self._plans = plans
        self._log = log_
        self._gateway = gateway
        self._ttl_ms = ttl_ms
        self._poll_ms = poll_interval_ms
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}

    async def start(self, identity: Identity, command: CallTool) -> TaskState:
        """Record a new task for `command`, publish the command, answer with the task.

        Raises:
            BusError: the command could not be published (the task is recorded as failed).
        """
        task_id = new_task_id()
        command = command.model_copy(update={"task_id": task_id})  # its worker watches the task
        envelope = await self._gateway.envelope(command)  # a store outage fails the call, no task
        state = await self._create(
            identity, command.tool_name, command.command_id, command.session_id, task_id=task_id
        )
        self._spawn(state.task_id, self._run(identity, state.task_id, command, envelope))
        return state

    async def start_plan(self, identity: Identity, command: ExecutePlan, tool_name: str) -> TaskState:
        """Record a task that follows the plan run `command` starts, then publish it; a
        refused start ends the task with the refusal, the plan's own end ends it otherwise."""
        envelope = await self._gateway.envelope(command)
        state = await self._create(
            identity, tool_name, command.command_id, command.session_id, plan_id=command.plan_id
        )
        self._spawn(state.task_id, self._start_plan(identity, state.task_id, command, envelope))
        return state

    async def _create(
        self,
        identity: Identity,
        tool_name: str,
        command_id: str,
        session_id: str | None,
        *,
        plan_id: str | None = None,
        task_id: str | None = None,
    ) -> TaskState:
        task_id = task_id or new_task_id()
        created = McpTaskCreated(
            task_id=task_id,
            tenant=identity.tenant,
            subject=identity.subject,
            tool_name=tool_name,
            command_id=command_id,
            session_id=session_id,
            plan_id=plan_id,
            ttl_ms=self._ttl_ms,
            poll_interval_ms=self._poll_ms,
            created_at=self._clock(),
        )
        try:
            await self._log.append(
                identity.tenant, identity.subject, task_id, 0, [created], command_id=command_id
            )
        except Exception as error:
            # It may have been written all the same (the acknowledgement lost): its command is
            # never sent, so end it, or it would stay working with nobody to end it. The error's
            # text (statement, host) stays in the log, as for every outage.
            log.warning("task %s: its creation was not confirmed: %r", task_id, error)
            unconfirmed = McpTaskFailed(
                code=INTERNAL_ERROR,
                message="the task's start was not confirmed",
                failed_at=created.created_at,
            )
            self._spawn(task_id, self._settle_quietly(identity, task_id, unconfirmed))
            raise
        state = fold([created])
        assert state is not None
        return state

    def _spawn(self, task_id: str, work: Coroutine[Any, Any, None]) -> None:
        runner = asyncio.create_task(work)
        self._running[task_id] = runner
        runner.add_done_callback(lambda _: self._running.pop(task_id, None))

    async def _start_plan(
        self, identity: Identity, task_id: str, command: ExecutePlan, envelope: bytes
    ) -> None:
        try:
            event = await self._gateway.call(command, envelope=envelope)
        except CommandTimeoutError:
            return  # tasks/get finds the start (or refusal) by the command's key
        except (BusError, KeyStoreError) as error:
            log.error("plan task %s: %s", task_id, error)
            await self._settle_quietly(identity, task_id, self._failure(error))
            return
        except Exception:  # sent, its outcome unread (not opened): tasks/get settles it
            log.exception("plan task %s: its start's outcome", task_id)
            return
        end = refused(event, self._clock())
        if end is not None:
            await self._settle_quietly(identity, task_id, end)
            return
        await self._follow_plan(identity, task_id)

    async def _follow_plan(self, identity: Identity, task_id: str) -> None:
        """Settle the task when its plan ends, so its end is recorded (and notified) without
        waiting for a tasks/get; bounded by the ttl. A replica that dies here loses nothing:
        the next tasks/get settles it from the plan's view."""
        deadline = self._clock() + self._ttl_ms / 1000
        while self._clock() < deadline:
            await asyncio.sleep(self._poll_ms / 1000)
            try:
                if (await self.get(identity, task_id)).terminal:
                    return
            except UnknownTaskError:
                return
            except TaskConflictError as error:
                log.warning("plan task %s: %r", task_id, error)

    def _failure(self, error: Exception) -> McpTaskFailed:
        return McpTaskFailed(code=INTERNAL_ERROR, message=str(error), failed_at=self._clock())

    async def _settle_quietly(self, identity: Identity, task_id: str, end: DomainEvent) -> None:
        """Record `end`, trying again through a store outage for a bounded time: when the
        command never reached the bus, nobody else can end the task."""
        pause = 0.1
        deadline = time.monotonic() + self._settle_s
        while True:
            try:
                await self._settle(identity, task_id, end)
                return
            except (UnknownTaskError, TaskConflictError) as error:  # expired meanwhile, or contended
                log.warning("task %s not settled here: %r", task_id, error)
                return
            except Exception as error:
                if time.monotonic() + pause > deadline:
                    log.error("task %s: its end could not be recorded: %r", task_id, error)
                    return
                log.warning("task %s: recording its end failed, trying again: %r", task_id, error)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _run(self, identity: Identity, task_id: str, command: CallTool, envelope: bytes) -> None:
        try:
            event = await self._gateway.call(command, envelope=envelope)
        except CommandTimeoutError:
            return  # still running somewhere: tasks/get finds the outcome by the command's key
        except (BusError, KeyStoreError) as error:
            log.error("task %s: %s", task_id, error)
            end: DomainEvent = self._failure(error)
        except Exception:  # sent, its outcome unread (not opened): tasks/get settles it
            log.exception("task %s: its outcome", task_id)
            return
        else:
            end = completion(event, self._clock())
        await self._settle_quietly(identity, task_id, end)

    async def _settle(self, identity: Identity, task_id: str, end: DomainEvent) -> TaskState:
        """Append `end` unless the task already ended; whatever ended first stays."""
        for _ in range(_RETRIES):
            version, state = await self._load(identity, task_id)
            if state.terminal:
                return state
            try:
                await self._log.append(
                    identity.tenant, identity.subject, task_id, version, [end], command_id=state.command_id
                )
            except TaskConflictError:
                continue
            _, state = await self._load(identity, task_id)
            return state
        raise TaskConflictError(f"task {task_id}: too many concurrent writers")

    async def _load(self, identity: Identity, task_id: str) -> tuple[int, TaskState]:
        version, events = await self._log.load(identity.tenant, identity.subject, task_id)
        state = fold(events)
        if state is None or state.subject != identity.subject or state.purged or state.expired(self._clock()):
            raise UnknownTaskError(task_id)
        return version, state

    async def get(self, identity: Identity, task_id: str) -> TaskState:
        """The caller's task, settled from its command's outcome if that is recorded.

        Raises:
            UnknownTaskError: no such task for this caller, or its ttl has run out.
        """
        _, state = await self._load(identity, task_id)
        if state.terminal:
            return state
        stopped = abandoned(state, self._clock())
        if stopped is not None:  # its worker stopped while it waited: nobody else ends it
            return await self._settle(identity, task_id, stopped)
        outcome = await self._log.outcome(identity.tenant, identity.subject, state.command_id)
        if outcome is None:
            return state
        if state.plan_id is not None:
            return await self._plan_state(identity, state, outcome)
        return await self._settle(identity, task_id, completion(outcome, self._clock()))

    async def _plan_state(
        self, identity: Identity, state: TaskState, started: Mapping[str, Any]
    ) -> TaskState:
        """A plan task's state from its plan: ended with the plan, else its progress."""
        assert state.plan_id is not None
        end: DomainEvent | None = refused(started, self._clock())
        if end is None:
            view = None if self._plans is None else await self._plans.view(*_owner(identity), state.plan_id)
            if view is None:
                return state
            end = plan_end(view, self._clock())
            if end is None:
                return replace(state, status_message=progress(view))
        return await self._settle(identity, state.task_id, end)

    async def update(self, identity: Identity, task_id: str, responses: Mapping[str, Any]) -> None:
        """Carry the owner's answers to the worker holding the task's call and record which
        keys they answered; keys the task is not waiting for are ignored.

        Raises:
            UnknownTaskError: no such task for this caller.
            InvalidResponsesError: an answer to a waiting request is not a result object.
            BusError: the answers could not be published (nothing is recorded).
        """
        state = await self.get(identity, task_id)
        answers = answerable(state, responses)
        if not answers or self._replies is None:
            return
        for key, answer in answers.items():
            await self._replies.answer(identity.tenant, identity.subject, {"id": key, "result": answer})
        answered = McpTaskInputAnswered(keys=list(answers), changed_at=self._clock())
        await self._settle(identity, task_id, answered)

    async def cancel(self, identity: Identity, task_id: str, reason: str = "") -> TaskState:
        """Cancel the caller's task if it has not ended (a second cancel records nothing).

        Raises:
            UnknownTaskError: no such task for this caller.
        """
        state = await self.get(identity, task_id)
        if state.terminal:
            return state
        if state.plan_id is not None:
            await self._cancel_plan(identity, state.plan_id, reason)
        state = await self._settle(
            identity, task_id, McpTaskCancelled(reason=reason, cancelled_at=self._clock())
        )
        runner = self._running.pop(task_id, None)
        if runner is not None:
            runner.cancel()
        return state

    async def _cancel_plan(self, identity: Identity, plan_id: str, reason: str) -> None:
        """Ask the plan executor to cancel the run (it compensates as for cancel_plan); the
        task is cancelled whatever it answers: the owner no longer wants the result."""
        cancel = CancelPlan(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            plan_id=plan_id,
            reason=reason or "the task was cancelled",
        )
        try:
            await self._gateway.call(cancel)
        except CommandTimeoutError:
            log.warning("plan %s: no answer to its cancellation yet", plan_id)

    async def close(self) -> None:
        """Stop waiting for outcomes (the commands go on; a later tasks/get settles them)."""
        for runner in list(self._running.values()):
            runner.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
