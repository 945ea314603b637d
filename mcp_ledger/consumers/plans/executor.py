"""The durable plan executor: runs a plan's ready tasks in parallel and records each step.

One `run` drives one plan to its end: replay the stream, relaunch attempts that were in
flight when a previous worker died (their TaskStarted is recorded, no outcome is), then
loop: collect finished attempts, let the pure `step` decide what follows, append it all in
one optimistic-concurrency write, launch what was started. A task whose TaskSucceeded is
stored is never run again. On ConcurrencyError (a cancellation, a competing executor) the
state is reloaded and the same results are decided again.

Each attempt's tool is run by AttemptCalls (attempts.py), under the task's time limit.
Does not decide anything (domain/plans/decisions.py) nor handle plan commands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_ledger.consumers.command_handler import AppendedCallback
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.plans.attempts import Attempt, AttemptCalls, bounded
from mcp_ledger.consumers.plans.stream import PLAIN, append_plan_events, catch_up, load_plan
from mcp_ledger.consumers.tools import ToolRunner
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
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.ports import ConcurrencyError, EventStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Finished:
    attempt: Attempt
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
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
        max_conflicts: int = 50,
        mapper: EventMapper = PLAIN,
    ) -> None:
        self._store = store
        self._mapper = mapper
        self._on_appended = on_appended
        self.attempts = AttemptCalls(catalog, runners)
        """Runs each attempt's tool; the wiring gives it the command handler, registry and gate."""
        self._clock = clock
        self._poll = poll_interval
        self._max_conflicts = max_conflicts
        self._stopped = asyncio.Event()
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
        live: dict[asyncio.Task[TaskResult], Attempt] = {}
        try:
            return await self._drive(state, live)
        finally:
            for task in live:
                task.cancel()
            if live:
                await asyncio.gather(*live, return_exceptions=True)

    async def _drive(self, state: PlanState, live: dict[asyncio.Task[TaskResult], Attempt]) -> str | None:
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

    async def _wait(self, state: PlanState, live: dict[asyncio.Task[TaskResult], Attempt]) -> list[_Finished]:
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

    def _resume(self, state: PlanState, live: dict[asyncio.Task[TaskResult], Attempt]) -> list[_Finished]:
        """Relaunch attempts a dead worker left in flight (started, never finished), or,
        when the plan is being stopped, record them as cancelled without running them."""
        reason = stop_reason(state, self._clock())
        if reason is not None:
            cancelled = TaskResult(error_code="cancelled", message=f"not resumed: plan {reason}")
            return [
                _Finished(Attempt(tid, state.tasks[tid].attempt), cancelled) for tid in sorted(state.running)
            ]
        for task_id in sorted(state.running, key=state.order.__getitem__):
            task = state.tasks[task_id]
            # By position and tool: task ids are the caller's text (sealed in the store); logs
            # are never erased.
            position, tool = state.order[task_id], state.plan_tool(task_id)
            log.info(
                "plan %s: resuming task #%d (%s) attempt %d", state.stream_id, position, tool, task.attempt
            )
            self._spawn(state, Attempt(task_id, task.attempt), tool, task.parameters, live)
        if state.compensating is not None:
            call = state.tasks[state.compensating].compensation_call
            assert call is not None
            self._spawn(state, Attempt(state.compensating, 0, compensation=True), call[0], call[1], live)
        return []

    def _launch(
        self, state: PlanState, events: list[DomainEvent], live: dict[asyncio.Task[TaskResult], Attempt]
    ) -> None:
        for event in events:
            if isinstance(event, TaskStarted) and state.tasks[event.task_id].status == "running":
                attempt = Attempt(event.task_id, event.attempt)
                self._spawn(state, attempt, event.tool_name, event.parameters, live)
            elif isinstance(event, CompensationStarted) and state.compensating == event.task_id:
                attempt = Attempt(event.task_id, 0, compensation=True)
                self._spawn(state, attempt, event.tool_name, event.parameters, live)

    def _spawn(
        self,
        state: PlanState,
        attempt: Attempt,
        tool_name: str,
        parameters: dict[str, Any] | None,
        live: dict[asyncio.Task[TaskResult], Attempt],
    ) -> None:
        timeout = None
        if not attempt.compensation and state.plan is not None:
            timeout = state.plan.task(attempt.task_id).timeout
        call = self.attempts.call(state, attempt, tool_name, parameters or {})
        live[asyncio.create_task(bounded(call, timeout))] = attempt
        log.debug(
            "plan %s: task %s attempt %d runs %s",
            state.stream_id,
            attempt.task_id,
            attempt.attempt,
            tool_name,
        )


def _result_of(task: asyncio.Task[TaskResult]) -> TaskResult:
    if task.cancelled():
        return TaskResult(error_code="cancelled", message="stopped by the plan (cancelled or timed out)")
    error = task.exception()
    if error is not None:
        return TaskResult(error_code="tool_error", message=f"{type(error).__name__}: {error}")
    return task.result()
