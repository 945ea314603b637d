"""The events of a plan's stream (streams.plan_stream: tenant, owner and plan id): acceptance,
each task's attempts, compensation, cancellation and the end.

Every field is sealed per subject unless domain/personal.NOT_PERSONAL names it; the ones
decided personal are marked so: the plan itself (its YAML form, conditions and literals), its
hash, task ids (names the caller chose), tool parameters and output, and every message or
reason (they quote conditions and errors). They register themselves in
events.EVENT_TYPES (the domain package imports this module), so the mapper and the projectors
know them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mcp_ledger.domain.events import EVENT_TYPES, JSON, DomainEvent
from mcp_ledger.domain.personal import Personal


class PlanAccepted(DomainEvent):
    """A validated plan, frozen by its hash; the executor runs exactly this plan."""

    terminal: ClassVar[bool] = True
    command_id: str
    plan_id: str
    tenant: str
    subject: str
    session_id: str | None = None
    roles: list[str]
    plan: Personal[JSON]
    plan_hash: Personal[str]
    seed: int
    """Seeds the retry jitter: replays and other workers compute the same delays."""
    accepted_at: float


class PlanStarted(DomainEvent):
    terminal: ClassVar[bool] = True
    command_id: str
    plan_id: str
    started_at: float
    deadline: float | None = None


class PlanCommandRefused(DomainEvent):
    """A plan command that may not run (unknown plan, not the caller's, already started)."""

    terminal: ClassVar[bool] = True
    command_id: str
    plan_id: str
    error_code: str
    message: Personal[str]


class PlanCancelRequested(DomainEvent):
    terminal: ClassVar[bool] = True
    command_id: str
    plan_id: str
    reason: Personal[str] = ""
    requested_at: float


class PlanStepGranted(DomainEvent):
    """Reactive mode: the caller allows one more task to start."""

    terminal: ClassVar[bool] = True
    command_id: str
    plan_id: str
    granted_at: float


class PlanPaused(DomainEvent):
    """Reactive mode: the granted steps are done; the plan waits for the next grant."""

    plan_id: str


class TaskStarted(DomainEvent):
    task_id: Personal[str]
    attempt: int
    tool_name: str
    parameters: Personal[JSON]
    """Resolved: references already replaced by upstream output."""
    started_at: float
    deadline: float | None = None


class TaskSucceeded(DomainEvent):
    task_id: Personal[str]
    attempt: int
    output: Personal[Any]
    finished_at: float


class TaskFailed(DomainEvent):
    task_id: Personal[str]
    attempt: int
    error_code: str
    message: Personal[str]
    retryable: bool
    will_retry: bool
    """True when a TaskRetryScheduled follows: the task is not done yet."""
    finished_at: float


class TaskRetryScheduled(DomainEvent):
    task_id: Personal[str]
    next_attempt: int
    delay: float
    not_before: float


class TaskSkipped(DomainEvent):
    task_id: Personal[str]
    reason: Personal[str]
    """Quotes the condition that was false, literals included."""


class TaskCancelled(DomainEvent):
    task_id: Personal[str]
    attempt: int
    reason: Personal[str]


class CompensationStarted(DomainEvent):
    task_id: Personal[str]
    tool_name: str
    parameters: Personal[JSON]
    started_at: float


class CompensationSucceeded(DomainEvent):
    task_id: Personal[str]
    output: Personal[Any]


class CompensationFailed(DomainEvent):
    task_id: Personal[str]
    error_code: str
    message: Personal[str]


class PlanCompleted(DomainEvent):
    plan_id: str
    status: str
    """succeeded, completed_with_errors, failed, compensated, compensation_failed,
    cancelled or timed_out."""
    finished_at: float


PLAN_EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        PlanAccepted,
        PlanStarted,
        PlanCommandRefused,
        PlanCancelRequested,
        PlanStepGranted,
        PlanPaused,
        TaskStarted,
        TaskSucceeded,
        TaskFailed,
        TaskRetryScheduled,
        TaskSkipped,
        TaskCancelled,
        CompensationStarted,
        CompensationSucceeded,
        CompensationFailed,
        PlanCompleted,
    )
}
EVENT_TYPES.update(PLAN_EVENT_TYPES)
