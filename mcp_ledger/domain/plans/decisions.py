"""What happens next in a plan: the pure decision step of the durable executor.

`step` looks at a plan's state and the time and returns the events that move it on (tasks
skipped or started with resolved parameters, compensations, the end), applying each to the
state as it goes so the state always equals "stored events + these". `task_outcome_events`
turns a finished attempt into events, scheduling a retry with exponential backoff and
jitter drawn from the plan's stored seed, so every replay and every worker agrees.
Tool output only ever fills parameters through references; it never picks what runs.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.conditions import ConditionError, condition_holds
from mcp_ledger.domain.plans.events import (
    CompensationFailed,
    CompensationStarted,
    CompensationSucceeded,
    PlanCompleted,
    PlanPaused,
    TaskCancelled,
    TaskFailed,
    TaskRetryScheduled,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from mcp_ledger.domain.plans.model import PlanTask, RetryPolicy
from mcp_ledger.domain.plans.refs import PlanReferenceError, resolve
from mcp_ledger.domain.plans.state import PlanState

PERMANENT_ERRORS = frozenset(
    {
        "invalid_arguments",
        "forbidden",
        "unknown_tool",
        "unknown_session",
        "no_session",
        "reference_unresolved",
    }
)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """How one attempt ended: output, or an error code and message."""

    output: Any = None
    error_code: str | None = None
    message: str = ""
    retryable: bool = True
    """False when the tool is not safe to run again (a registered or upstream tool not
    annotated read-only or idempotent): the plan's retry policy does not apply."""

    @property
    def ok(self) -> bool:
        return self.error_code is None


def retry_delay(policy: RetryPolicy, attempt: int, seed: int, task_id: str) -> float:
    """Seconds before the attempt after `attempt`: capped exponential (or fixed) with equal
    jitter, deterministic in (seed, task, attempt)."""
    base = policy.initial if policy.backoff == "fixed" else policy.initial * 2 ** (attempt - 1)
    base = min(base, policy.max)
    jitter = random.Random(f"{seed}:{task_id}:{attempt}").random()
    return base / 2 + jitter * base / 2


def task_outcome_events(
    state: PlanState, task_id: str, attempt: int, result: TaskResult, now: float
) -> list[DomainEvent]:
    """Events recording one finished attempt; empty when that attempt is no longer running
    (a stale result, e.g. after a cancellation was recorded)."""
    task = state.tasks.get(task_id)
    if task is None or task.status != "running" or task.attempt != attempt or state.plan is None:
        return []
    if result.ok:
        return [TaskSucceeded(task_id=task_id, attempt=attempt, output=result.output, finished_at=now)]
    code = result.error_code or "tool_error"
    if code == "cancelled":
        return [TaskCancelled(task_id=task_id, attempt=attempt, reason=result.message or "cancelled")]
    spec = state.plan.task(task_id)
    retryable = code not in PERMANENT_ERRORS and result.retryable
    will_retry = retryable and attempt < spec.retry.max_attempts and not _stopping(state, now)
    failed = TaskFailed(
        task_id=task_id,
        attempt=attempt,
        error_code=code,
        message=result.message,
        retryable=retryable,
        will_retry=will_retry,
        finished_at=now,
    )
    if not will_retry:
        return [failed]
    assert state.accepted is not None
    delay = retry_delay(spec.retry, attempt, state.accepted.seed, task_id)
    retry = TaskRetryScheduled(task_id=task_id, next_attempt=attempt + 1, delay=delay, not_before=now + delay)
    return [failed, retry]


def compensation_outcome_events(state: PlanState, task_id: str, result: TaskResult) -> list[DomainEvent]:
    """Events recording how a compensation call ended (empty when stale)."""
    if state.compensating != task_id:
        return []
    if result.ok:
        return [CompensationSucceeded(task_id=task_id, output=result.output)]
    return [
        CompensationFailed(
            task_id=task_id, error_code=result.error_code or "tool_error", message=result.message
        )
    ]


def _stopping(state: PlanState, now: float) -> str | None:
    if state.cancel_requested:
        return "cancelled"
    if state.deadline is not None and now >= state.deadline:
        return "timed_out"
    return None


def stop_reason(state: PlanState, now: float) -> str | None:
    """Why running tasks must be cancelled now (cancellation, plan timeout), else None."""
    return None if state.completed else _stopping(state, now)


def step(state: PlanState, now: float) -> list[DomainEvent]:
    """The events that move the plan on at `now`, already applied to `state`."""
    if state.plan is None or not state.started or state.completed:
        return []
    events: list[DomainEvent] = []

    def emit(event: DomainEvent) -> None:
        state.apply(event)
        events.append(event)

    stopping = _stopping(state, now)
    if stopping is not None:
        if not state.running and state.compensating is None:
            emit(PlanCompleted(plan_id=state.plan.plan_id, status=stopping, finished_at=now))
        return events
    if not state.final_failures or _continues(state):
        _examine_candidates(state, emit)
        _start_ready(state, now, emit)
    if state.final_failures and not _continues(state):
        _wind_down(state, now, emit)
    elif state.done_count == len(state.tasks) and not state.running:
        status = "completed_with_errors" if state.final_failures else "succeeded"
        emit(PlanCompleted(plan_id=state.plan.plan_id, status=status, finished_at=now))
    elif _waits_for_grant(state):
        emit(PlanPaused(plan_id=state.plan.plan_id))
    return events


def _step_budget(state: PlanState) -> int | None:
    """New tasks that may still start (None: no limit). Retries need no new step."""
    assert state.plan is not None
    if state.plan.mode != "reactive":
        return None
    return state.steps_granted - state.first_starts


def _waits_for_grant(state: PlanState) -> bool:
    return (
        _step_budget(state) == 0
        and not state.paused
        and not state.running
        and not state.retries
        and state.compensating is None
        and (not state.final_failures or _continues(state))
    )


def _continues(state: PlanState) -> bool:
    assert state.plan is not None
    return all(state.plan.task(tid).on_error == "continue" for tid in state.final_failures)


def _examine_candidates(state: PlanState, emit: Any) -> None:
    assert state.plan is not None
    while state.candidates:
        task_id = state.candidates.pop()
        if state.tasks[task_id].status != "pending":
            continue
        task = state.plan.task(task_id)
        blocked = [dep for dep in task.dependencies if state.tasks[dep].status != "succeeded"]
        if blocked:
            reason = f"upstream {blocked[0]} {state.tasks[blocked[0]].status}"
            emit(TaskSkipped(task_id=task_id, reason=reason))
        elif task.condition is not None and not _condition(state, task):
            emit(TaskSkipped(task_id=task_id, reason=f"condition false: {task.condition}"))
        else:
            heapq.heappush(state.ready, (state.order[task_id], task_id))


def _condition(state: PlanState, task: PlanTask) -> bool:
    view = {
        dep: {"status": state.tasks[dep].status, "output": state.tasks[dep].output}
        for dep in task.dependencies
    }
    try:
        return condition_holds(task.condition or "", view)
    except ConditionError:
        return False  # validated at acceptance; an unparseable condition never runs its task


def _start_ready(state: PlanState, now: float, emit: Any) -> None:
    assert state.plan is not None
    while state.retries and state.retries[0][0] <= now:
        _, order, task_id = heapq.heappop(state.retries)
        if state.tasks[task_id].status == "waiting_retry":
            heapq.heappush(state.ready, (order, task_id))
    while state.ready and len(state.running) < state.plan.max_parallel_tasks:
        if state.final_failures and not _continues(state):
            return
        entry = _next_ready(state)
        if entry is None:
            return
        task_id = entry[1]
        task_state = state.tasks[task_id]
        if task_state.status not in {"pending", "waiting_retry"}:
            continue
        _start(state, state.plan.task(task_id), task_state.attempt + 1, now, emit)


def _next_ready(state: PlanState) -> tuple[int, str] | None:
    """The next ready task by plan order; with no step left (reactive), only a retry."""
    if _step_budget(state) != 0:
        return heapq.heappop(state.ready)
    retries = [entry for entry in state.ready if state.tasks[entry[1]].status == "waiting_retry"]
    if not retries:
        return None
    entry = min(retries)
    state.ready.remove(entry)
    heapq.heapify(state.ready)
    return entry


def _start(state: PlanState, task: PlanTask, attempt: int, now: float, emit: Any) -> None:
    try:
        parameters = resolve(task.parameters, state.outputs())
    except PlanReferenceError as error:
        deadline = None
        emit(
            TaskStarted(
                task_id=task.id,
                attempt=attempt,
                tool_name=task.tool_name,
                parameters={},
                started_at=now,
                deadline=deadline,
            )
        )
        emit(
            TaskFailed(
                task_id=task.id,
                attempt=attempt,
                error_code="reference_unresolved",
                message=str(error),
                retryable=False,
                will_retry=False,
                finished_at=now,
            )
        )
        return
    deadline = now + task.timeout if task.timeout is not None else None
    emit(
        TaskStarted(
            task_id=task.id,
            attempt=attempt,
            tool_name=task.tool_name,
            parameters=parameters,
            started_at=now,
            deadline=deadline,
        )
    )


def _wind_down(state: PlanState, now: float, emit: Any) -> None:
    """After a final failure that stops the plan: let running tasks end, then compensate
    succeeded tasks in reverse order of success, one at a time, then end the plan."""
    assert state.plan is not None
    if state.running or state.compensating is not None:
        return
    compensate = any(state.plan.task(tid).on_error == "compensate" for tid in state.final_failures)
    if compensate:
        for task_id in reversed(state.succeeded_order):
            spec = state.plan.task(task_id)
            if spec.compensate is not None and state.tasks[task_id].compensation is None:
                _start_compensation(state, spec, now, emit)
                return
        failed = any(task.compensation == "failed" for task in state.tasks.values())
        status = "compensation_failed" if failed else "compensated"
    else:
        status = "failed"
    emit(PlanCompleted(plan_id=state.plan.plan_id, status=status, finished_at=now))


def _start_compensation(state: PlanState, spec: PlanTask, now: float, emit: Any) -> None:
    assert spec.compensate is not None
    try:
        parameters = resolve(spec.compensate.parameters, state.outputs())
    except PlanReferenceError as error:
        emit(
            CompensationStarted(
                task_id=spec.id, tool_name=spec.compensate.tool_name, parameters={}, started_at=now
            )
        )
        emit(CompensationFailed(task_id=spec.id, error_code="reference_unresolved", message=str(error)))
        return
    emit(
        CompensationStarted(
            task_id=spec.id, tool_name=spec.compensate.tool_name, parameters=parameters, started_at=now
        )
    )


def wake_at(state: PlanState) -> float | None:
    """The next time `step` may have something to do without any task finishing."""
    times = [t for t in (state.deadline,) if t is not None]
    if state.retries:
        times.append(state.retries[0][0])
    return min(times, default=None)
