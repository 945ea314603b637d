"""The durable plan executor: runs a plan's ready tasks in parallel and records each step.

One `run` drives one plan to its end: replay the stream, relaunch attempts that were in
flight when a previous worker died (their TaskStarted is recorded, no outcome is), then
loop: collect finished attempts, let the pure `step` decide what follows, append it all in
one optimistic-concurrency write, launch what was started. A task whose TaskSucceeded is
stored is never run again. On ConcurrencyError (a cancellation, a competing executor) the
state is reloaded and the same results are decided again.

Tools run through the worker's runners (consumers/tools.py). A tool that needs a session
goes through the CommandHandler with a command id derived from the run (the accepting
command's random id), task and attempt, so its call lands in the session stream exactly once
however often the attempt is resumed, and no other plan, however identical, shares the id.
Does not decide anything (domain/plan_decisions.py) nor handle plan commands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_ledger.checks.arguments import check_arguments
from mcp_ledger.checks.validator import compile_schema
from mcp_ledger.consumers.command_handler import AppendedCallback, CommandHandler
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.plans.calls import recorded_call, unless_safe
from mcp_ledger.consumers.plans.stream import (
    PLAIN,
    append_plan_events,
    catch_up,
    load_plan,
    task_command_id,
)
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolRunner
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.decisions import (
    TaskResult,
    compensation_outcome_events,
    step,
    stop_reason,
    task_outcome_events,
    wake_at,
)
from mcp_ledger.domain.plans.events import CompensationStarted, TaskStarted
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.ports import ConcurrencyError, EventStore
from mcp_ledger.projections.registry.catalog import ToolCatalog

log = logging.getLogger(__name__)

TaskGate = Callable[[CallTool], Awaitable[TaskResult | None]]
"""Admits a task attempt just before it runs (the caller's rate limit: wiring/plans.py); a
TaskResult refuses it (error code `rate_limited`, retryable) and the tool never runs.
Compensations are not charged: they undo charged work, and refusing one would leave it done."""


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What a launched asyncio task is running."""

    task_id: str
    attempt: int
    compensation: bool = False


@dataclass(frozen=True, slots=True)
class _Finished:
    attempt: _Attempt
    result: TaskResult


class ExecutorStoppedError(Exception):
    """The worker is shutting down: the plan is left to be resumed (the run message stays
    unacknowledged, so the bus hands it to another worker)."""


class PlanExecutor:
    """Runs plans to their end on one worker."""

    def __init__(
        self,
        store: EventStore,
        catalog: Mapping[str, ToolSpec],
        runners: Mapping[str, ToolRunner],
        on_appended: AppendedCallback,
        *,
        calls: CommandHandler | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
        max_conflicts: int = 50,
        mapper: EventMapper = PLAIN,
    ) -> None:
        self._store = store
        self._mapper = mapper
        self._catalog = catalog
        self._runners = runners
        self._on_appended = on_appended
        self.calls = calls
        """Runs session-bound tasks; set after construction when the handler needs this executor."""
        self.registry: ToolCatalog | None = None
        """Where tasks naming a registered or upstream tool find it; set by the wiring."""
        self.gate: TaskGate | None = None
        """Charges every task attempt to its plan's caller; set by the wiring when limits apply."""
        self._clock = clock
        self._poll = poll_interval
        self._max_conflicts = max_conflicts
        self._stopped = asyncio.Event()
        self._validators = {name: compile_schema(spec.input_schema) for name, spec in catalog.items()}
        self.redeliver_on_stop = True
        """Raise on stop so the bus redelivers the run to another worker (Kafka); an embedded
        process instead resumes its unfinished plans at its next start."""

    async def stop(self) -> None:
        """Make every run return within a poll interval, cancelling its tasks in flight.
        Plans are not drained: they may run for hours, and any worker can resume them."""
        self._stopped.set()

    async def handle_payload(self, payload: bytes) -> None:
        """Handle one plan-run request ({"stream_id": …}) from the plan-runs topic."""
        try:
            stream_id = str(json.loads(payload)["stream_id"])
        except (ValueError, KeyError, TypeError):
            log.error("dropping malformed plan-run message (%d bytes)", len(payload))
            return
        try:
            await self.run(stream_id)
        except ExecutorStoppedError:
            if self.redeliver_on_stop:
                raise
            log.info("plan %s left to resume at the next start", stream_id)

    async def run(self, stream_id: str) -> str | None:
        """Drive the plan to its end (or return at once when it is not runnable); returns
        its final status, None when it was not started.

        Raises:
            ExecutorStoppedError: the worker is stopping; the plan is left to be resumed.
            ConcurrencyError: competing writers kept winning; the run message is redelivered.
        """
        if self._stopped.is_set():
            raise ExecutorStoppedError(f"worker stopping; plan {stream_id} left to resume")
        state = await load_plan(self._store, stream_id, self._mapper)
        if not state.started or state.completed:
            return state.completion
        live: dict[asyncio.Task[TaskResult], _Attempt] = {}
        try:
            return await self._drive(state, live)
        finally:
            for task in live:
                task.cancel()
            if live:
                await asyncio.gather(*live, return_exceptions=True)

    async def _drive(self, state: PlanState, live: dict[asyncio.Task[TaskResult], _Attempt]) -> str | None:
        finished = self._resume(state, live)
        conflicts = 0
        while True:
            if self._stopped.is_set():
                raise ExecutorStoppedError(f"worker stopping; plan {state.stream_id} left to resume")
            now = self._clock()
            reason = stop_reason(state, now)
            if reason is not None:
                for task in live:
                    task.cancel(reason)
            base = state.version
            events = self._record(state, finished, now) + step(state, now)
            if events:
                try:
                    result = await append_plan_events(self._store, state, base, events, self._mapper)
                except ConcurrencyError:
                    conflicts += 1
                    if conflicts > self._max_conflicts:
                        raise
                    state = await load_plan(self._store, state.stream_id, self._mapper)
                    continue
                finished.clear()
                await self._on_appended(result.events)
                self._launch(state, events, live)
            if state.completed:
                log.info("plan %s ended: %s", state.stream_id, state.completion)
                return state.completion
            if state.paused and not live:
                return "paused"  # reactive: the next execute_plan asks for a run again
            finished += await self._wait(state, live)

    def _record(self, state: PlanState, finished: list[_Finished], now: float) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for done in finished:
            if done.attempt.compensation:
                new = compensation_outcome_events(state, done.attempt.task_id, done.result)
            else:
                new = task_outcome_events(state, done.attempt.task_id, done.attempt.attempt, done.result, now)
            for event in new:
                state.apply(event)
            events += new
        return events

    async def _wait(
        self, state: PlanState, live: dict[asyncio.Task[TaskResult], _Attempt]
    ) -> list[_Finished]:
        wake = wake_at(state)
        timeout = self._poll if wake is None else max(0.0, min(self._poll, wake - self._clock()))
        if not live:
            await asyncio.sleep(timeout)
            await catch_up(self._store, state, self._mapper)
            return []
        done, _ = await asyncio.wait(live, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            # Nothing finished: look for what others recorded (a cancellation).
            await catch_up(self._store, state, self._mapper)
            return []
        return [_Finished(live.pop(task), _result_of(task)) for task in done]

    def _resume(self, state: PlanState, live: dict[asyncio.Task[TaskResult], _Attempt]) -> list[_Finished]:
        """Relaunch attempts a dead worker left in flight (started, never finished), or,
        when the plan is being stopped, record them as cancelled without running them."""
        reason = stop_reason(state, self._clock())
        if reason is not None:
            cancelled = TaskResult(error_code="cancelled", message=f"not resumed: plan {reason}")
            return [
                _Finished(_Attempt(tid, state.tasks[tid].attempt), cancelled) for tid in sorted(state.running)
            ]
        for task_id in sorted(state.running, key=state.order.__getitem__):
            task = state.tasks[task_id]
            # By position and tool: task ids are the caller's text (sealed in the store); logs
            # are never erased.
            position, tool = state.order[task_id], state.plan_tool(task_id)
            log.info(
                "plan %s: resuming task #%d (%s) attempt %d", state.stream_id, position, tool, task.attempt
            )
            self._spawn(state, _Attempt(task_id, task.attempt), tool, task.parameters, live)
        if state.compensating is not None:
            call = state.tasks[state.compensating].compensation_call
            assert call is not None
            self._spawn(state, _Attempt(state.compensating, 0, compensation=True), call[0], call[1], live)
        return []

    def _launch(
        self, state: PlanState, events: list[DomainEvent], live: dict[asyncio.Task[TaskResult], _Attempt]
    ) -> None:
        for event in events:
            if isinstance(event, TaskStarted) and state.tasks[event.task_id].status == "running":
                attempt = _Attempt(event.task_id, event.attempt)
                self._spawn(state, attempt, event.tool_name, event.parameters, live)
            elif isinstance(event, CompensationStarted) and state.compensating == event.task_id:
                attempt = _Attempt(event.task_id, 0, compensation=True)
                self._spawn(state, attempt, event.tool_name, event.parameters, live)

    def _spawn(
        self,
        state: PlanState,
        attempt: _Attempt,
        tool_name: str,
        parameters: dict[str, Any] | None,
        live: dict[asyncio.Task[TaskResult], _Attempt],
    ) -> None:
        timeout = None
        if not attempt.compensation and state.plan is not None:
            timeout = state.plan.task(attempt.task_id).timeout
        call = self._call(state, attempt, tool_name, parameters or {})
        live[asyncio.create_task(_bounded(call, timeout))] = attempt
        log.debug(
            "plan %s: task %s attempt %d runs %s",
            state.stream_id,
            attempt.task_id,
            attempt.attempt,
            tool_name,
        )

    async def _call(
        self, state: PlanState, attempt: _Attempt, tool_name: str, parameters: dict[str, Any]
    ) -> TaskResult:
        accepted = state.accepted
        assert accepted is not None
        spec = self._catalog.get(tool_name)
        if spec is None:
            return await self._call_registered(state, attempt, tool_name, parameters)
        denied = access_problem(accepted.roles, spec.minimum_role, spec.allowed_roles)
        if denied is not None:
            return TaskResult(error_code="forbidden", message=denied)
        command = self._command(state, attempt, tool_name, parameters, in_session=spec.needs_session)
        refused = None if self.gate is None or attempt.compensation else await self.gate(command)
        if refused is not None:
            return refused
        if spec.needs_session:
            return await self._call_in_session(command)
        problem = await check_arguments(spec.input_schema, parameters, self._validators.get(tool_name))
        if problem is not None:
            return TaskResult(error_code="invalid_arguments", message=problem)
        runner = self._runners.get(tool_name)
        if runner is None:
            return TaskResult(
                error_code="tool_unavailable", message=f"no runner for {tool_name!r} on this worker"
            )
        try:
            outcome = await runner(
                ToolInvocation(command=command, session=Session(stream_id=command.stream_id))
            )
        except ToolExecutionError as error:
            return TaskResult(error_code=error.code, message=error.message)
        except Exception as error:  # boundary: a tool's bug is a failed attempt, not a dead executor
            log.exception("tool %s failed in plan %s", tool_name, accepted.plan_id)
            return TaskResult(error_code="tool_error", message=f"{type(error).__name__}: {error}")
        output = outcome.structured if outcome.structured is not None else {"content": outcome.content}
        return TaskResult(output=output)

    def _command(
        self,
        state: PlanState,
        attempt: _Attempt,
        tool_name: str,
        parameters: dict[str, Any],
        *,
        in_session: bool,
    ) -> CallTool:
        accepted = state.accepted
        assert accepted is not None
        kind = "compensate" if attempt.compensation else str(attempt.attempt)
        return CallTool(
            command_id=task_command_id(state, attempt.task_id, kind),
            correlation_id=accepted.command_id,
            tenant=accepted.tenant,
            subject=accepted.subject,
            session_id=accepted.session_id if in_session else None,
            roles=tuple(accepted.roles),
            tool_name=tool_name,
            arguments=parameters,
        )

    async def _call_registered(
        self, state: PlanState, attempt: _Attempt, tool_name: str, parameters: dict[str, Any]
    ) -> TaskResult:
        """A registered or upstream tool of the plan's scope, as a recorded CallTool (calls.py)."""
        accepted = state.accepted
        assert accepted is not None
        entry = None
        if self.registry is not None and self.calls is not None:
            entry = await self.registry.find(accepted.tenant, accepted.session_id, tool_name)
        if entry is None or self.calls is None:
            return TaskResult(error_code="unknown_tool", message=f"unknown tool {tool_name!r}")
        # A session's own tool runs in that session (found there again); a tenant-wide one
        # needs none, so it still runs after the agent closed the session the plan came from.
        in_session = entry.session_id is not None or entry.spec.needs_session
        command = self._command(state, attempt, tool_name, parameters, in_session=in_session)
        refused = None if self.gate is None or attempt.compensation else await self.gate(command)
        if refused is not None:
            return refused
        return unless_safe(await recorded_call(self.calls, command), entry)

    async def _call_in_session(self, command: CallTool) -> TaskResult:
        if self.calls is None:
            return TaskResult(error_code="tool_unavailable", message="session tools need the command handler")
        if command.session_id is None:
            return TaskResult(
                error_code="no_session", message=f"{command.tool_name} needs the plan to run in a session"
            )
        recorded = await self.calls.handle(command)
        last = await self.calls.opened(recorded.events[-1])
        if last.event_type == "ToolSucceeded":
            data = last.data
            return TaskResult(output=data.get("structured") or {"content": data.get("content", [])})
        code = str(last.data.get("error_code", "forbidden"))
        return TaskResult(error_code=code, message=str(last.data.get("message", last.data.get("reason", ""))))


async def _bounded(call: Any, limit_s: float | None) -> TaskResult:
    if limit_s is None:
        result: TaskResult = await call
        return result
    try:
        async with asyncio.timeout(limit_s):
            result = await call
            return result
    except TimeoutError:
        return TaskResult(error_code="timeout", message=f"no result within {limit_s:g}s")


def _result_of(task: asyncio.Task[TaskResult]) -> TaskResult:
    if task.cancelled():
        return TaskResult(error_code="cancelled", message="stopped by the plan (cancelled or timed out)")
    error = task.exception()
    if error is not None:
        return TaskResult(error_code="tool_error", message=f"{type(error).__name__}: {error}")
    return task.result()
