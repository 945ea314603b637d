"""The Plan aggregate: a plan's state rebuilt by replaying its stream.

Owns what a plan stream means (which tasks ran, with what result, what is ready next) and
keeps the indexes the decision step needs (tasks whose dependencies are all done, retries
by due time) so a step costs little even for thousands of tasks. Decides nothing itself;
see plan_decisions.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.events import (
    CompensationFailed,
    CompensationStarted,
    CompensationSucceeded,
    PlanAccepted,
    PlanCancelRequested,
    PlanCompleted,
    PlanPaused,
    PlanStarted,
    PlanStepGranted,
    TaskCancelled,
    TaskFailed,
    TaskRetryScheduled,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from mcp_ledger.domain.plans.model import Plan
from mcp_ledger.domain.plans.validation import topological_order

DONE = frozenset({"succeeded", "failed", "skipped", "cancelled"})


@dataclass
class TaskState:
    """One task: `attempt` is the latest attempt started (0: never)."""

    status: str = "pending"
    attempt: int = 0
    parameters: dict[str, Any] | None = None
    deadline: float | None = None
    not_before: float | None = None
    output: Any = None
    error_code: str | None = None
    message: str | None = None
    compensation: str | None = None
    """None, then running, succeeded or failed."""
    compensation_call: tuple[str, dict[str, Any]] | None = None


@dataclass
class PlanState:
    """State of one plan stream; `version` is the number of events applied."""

    stream_id: str
    version: int = 0
    plan: Plan | None = None
    accepted: PlanAccepted | None = None
    started_at: float | None = None
    deadline: float | None = None
    cancel_requested: bool = False
    completion: str | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)
    unfinished_deps: dict[str, int] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)
    """Pending tasks whose dependencies are all done, not yet examined by a step."""
    ready: list[tuple[int, str]] = field(default_factory=list)
    """Heap of examined tasks that may start, by plan order."""
    retries: list[tuple[float, int, str]] = field(default_factory=list)
    """Heap of (not_before, order, task) waiting to retry."""
    running: set[str] = field(default_factory=set)
    compensating: str | None = None
    steps_granted: int = 0
    first_starts: int = 0
    paused: bool = False
    succeeded_order: list[str] = field(default_factory=list)
    succeeded_outputs: dict[str, Any] = field(default_factory=dict)
    final_failures: list[str] = field(default_factory=list)
    done_count: int = 0

    @property
    def exists(self) -> bool:
        return self.accepted is not None

    @property
    def started(self) -> bool:
        return self.started_at is not None

    @property
    def completed(self) -> bool:
        return self.completion is not None

    def plan_tool(self, task_id: str) -> str:
        """The tool a task of the accepted plan calls."""
        assert self.plan is not None
        return self.plan.task(task_id).tool_name

    def outputs(self) -> dict[str, Any]:
        """Output of every succeeded task, by id (kept as tasks succeed: a start reads it)."""
        return self.succeeded_outputs

    def apply(self, event: DomainEvent) -> None:
        """Fold one event into the state."""
        self.version += 1
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    @classmethod
    def replay(cls, stream_id: str, events: Iterable[DomainEvent]) -> PlanState:
        """Rebuild a plan from its events in stream order."""
        state = cls(stream_id=stream_id)
        for event in events:
            state.apply(event)
        return state

    def _finish(self, task_id: str, status: str) -> None:
        task = self.tasks[task_id]
        task.status = status
        self.running.discard(task_id)
        self.done_count += 1
        for child in self.dependents.get(task_id, ()):
            self.unfinished_deps[child] -= 1
            if self.unfinished_deps[child] == 0:
                self.candidates.append(child)


def _accepted(state: PlanState, event: PlanAccepted) -> None:
    plan = Plan.model_validate(event.plan)
    state.plan, state.accepted = plan, event
    state.order = {tid: index for index, tid in enumerate(topological_order(plan))}
    state.tasks = {task.id: TaskState() for task in plan.tasks}
    state.dependents = {task.id: [] for task in plan.tasks}
    for task in plan.tasks:
        deps = set(task.dependencies)
        state.unfinished_deps[task.id] = len(deps)
        for dep in deps:
            state.dependents[dep].append(task.id)
    state.candidates = sorted(
        (t for t, n in state.unfinished_deps.items() if n == 0), key=state.order.__getitem__
    )


def _plan_started(state: PlanState, event: PlanStarted) -> None:
    state.started_at, state.deadline = event.started_at, event.deadline
    state.steps_granted = 1


def _step_granted(state: PlanState, event: PlanStepGranted) -> None:
    state.steps_granted += 1
    state.paused = False


def _paused(state: PlanState, event: PlanPaused) -> None:
    state.paused = True


def _cancel(state: PlanState, event: PlanCancelRequested) -> None:
    state.cancel_requested = True


def _task_started(state: PlanState, event: TaskStarted) -> None:
    task = state.tasks[event.task_id]
    task.status, task.attempt = "running", event.attempt
    state.first_starts += event.attempt == 1
    task.parameters, task.deadline, task.not_before = event.parameters, event.deadline, None
    state.running.add(event.task_id)


def _task_succeeded(state: PlanState, event: TaskSucceeded) -> None:
    state.tasks[event.task_id].output = event.output
    state.succeeded_order.append(event.task_id)
    state.succeeded_outputs[event.task_id] = event.output
    state._finish(event.task_id, "succeeded")


def _task_failed(state: PlanState, event: TaskFailed) -> None:
    task = state.tasks[event.task_id]
    task.error_code, task.message = event.error_code, event.message
    if event.will_retry:
        task.status = "waiting_retry"
        state.running.discard(event.task_id)
        return
    state.final_failures.append(event.task_id)
    state._finish(event.task_id, "failed")


def _retry(state: PlanState, event: TaskRetryScheduled) -> None:
    state.tasks[event.task_id].not_before = event.not_before
    heapq.heappush(state.retries, (event.not_before, state.order[event.task_id], event.task_id))


def _skipped(state: PlanState, event: TaskSkipped) -> None:
    state.tasks[event.task_id].message = event.reason
    state._finish(event.task_id, "skipped")


def _cancelled(state: PlanState, event: TaskCancelled) -> None:
    state.tasks[event.task_id].message = event.reason
    state._finish(event.task_id, "cancelled")


def _compensation_started(state: PlanState, event: CompensationStarted) -> None:
    task = state.tasks[event.task_id]
    task.compensation, task.compensation_call = "running", (event.tool_name, event.parameters)
    state.compensating = event.task_id


def _compensation_succeeded(state: PlanState, event: CompensationSucceeded) -> None:
    state.tasks[event.task_id].compensation = "succeeded"
    state.compensating = None


def _compensation_failed(state: PlanState, event: CompensationFailed) -> None:
    task = state.tasks[event.task_id]
    task.compensation, task.error_code, task.message = "failed", event.error_code, event.message
    state.compensating = None


def _completed(state: PlanState, event: PlanCompleted) -> None:
    state.completion = event.status


_HANDLERS: dict[type[DomainEvent], Any] = {
    PlanAccepted: _accepted,
    PlanStarted: _plan_started,
    PlanCancelRequested: _cancel,
    PlanStepGranted: _step_granted,
    PlanPaused: _paused,
    TaskStarted: _task_started,
    TaskSucceeded: _task_succeeded,
    TaskFailed: _task_failed,
    TaskRetryScheduled: _retry,
    TaskSkipped: _skipped,
    TaskCancelled: _cancelled,
    CompensationStarted: _compensation_started,
    CompensationSucceeded: _compensation_succeeded,
    CompensationFailed: _compensation_failed,
    PlanCompleted: _completed,
}
