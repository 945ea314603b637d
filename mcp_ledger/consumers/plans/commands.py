"""Handling AcceptPlan, ExecutePlan and CancelPlan: short decisions on the plan stream.

Accepting validates the plan again (never trust the bus: tools, roles, references, cycle,
parameters, and that the hash is the plan's) and freezes it in PlanAccepted. Starting
records PlanStarted and asks for a run: execution itself happens on the plan-runs topic
(plan_executor.py), so a long plan never holds up the commands partition it came from.
A command reaches only the caller's own plan of that id (stream.owned_plan): another
subject's plan, of the same tenant or not, is as absent as one never made, and its id is
free for the caller. Idempotent by command key like every command.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping

from mcp_ledger.checks.arguments import plan_parameter_problems
from mcp_ledger.consumers.command_handler import AppendedCallback, CommandConflictError
from mcp_ledger.consumers.mapping import EventMapper, command_key
from mcp_ledger.consumers.plans.stream import PLAIN, owned_plan, plan_records
from mcp_ledger.domain.commands import AcceptPlan, CancelPlan, Command, ExecutePlan, PlanCommand
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.events import (
    PlanAccepted,
    PlanCancelRequested,
    PlanCommandRefused,
    PlanCompleted,
    PlanStarted,
    PlanStepGranted,
)
from mcp_ledger.domain.plans.model import PlanFormError, normalise_plan, plan_hash
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.domain.plans.validation import plan_problems, with_derived_dependencies
from mcp_ledger.domain.streams import call_stream, parse_plan_stream
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.ports import ConcurrencyError, EventStore
from mcp_ledger.projections.registry.catalog import ToolCatalog

log = logging.getLogger(__name__)

RunRequest = Callable[[str], Awaitable[None]]
"""Asks some worker to run (or resume) the plan with this stream id."""
Clock = Callable[[], float]


class PlanCommandHandler:
    """Decides plan commands for one worker."""

    def __init__(
        self,
        store: EventStore,
        catalog: Mapping[str, ToolSpec],
        request_run: RunRequest,
        on_appended: AppendedCallback,
        clock: Clock,
        *,
        max_attempts: int = 5,
        mapper: EventMapper = PLAIN,
    ) -> None:
        self._store = store
        self._mapper = mapper
        self._catalog = catalog
        self._request_run = request_run
        self._on_appended = on_appended
        self._clock = clock
        self._max_attempts = max_attempts
        self.registry: ToolCatalog | None = None
        """Where a plan's registered and upstream tools are found (set by the wiring)."""

    async def handle(self, command: Command) -> None:
        """Decide and record one plan command; idempotent by command id.

        Raises:
            CommandConflictError: concurrent writers kept winning; redeliver later.
        """
        if not isinstance(command, PlanCommand):
            log.error("not a plan command: %s", type(command).__name__)
            return
        key = command_key(command)
        recorded = await self._store.events_for_command(key)
        if recorded:
            if parse_plan_stream(recorded[0].stream_id) is not None:  # not a refusal
                await self._after(command, recorded[0].stream_id, None)
            return
        registered = await self._registered(command)
        for _ in range(self._max_attempts):
            state = await self.owned_plan(command.tenant, command.subject, command.plan_id)
            stream_id, events = self._decide(command, state, registered)
            expected = state.version if stream_id == state.stream_id else 0
            records = plan_records(
                events,
                tenant=command.tenant,
                subject=command.subject,
                command_id=command.command_id,
                correlation_id=command.correlation_id,
            )
            records = await self._mapper.sealed(records, stream_id)
            try:
                result = await self._store.append(stream_id, expected, records, command=key)
            except ConcurrencyError:
                continue
            if not result.duplicate:
                await self._on_appended(result.events)
            await self._after(command, state.stream_id, events)
            return
        raise CommandConflictError(f"command {command.command_id} lost {self._max_attempts} races")

    async def _registered(self, command: PlanCommand) -> dict[str, ToolSpec]:
        """The registered and upstream tools an accepted plan names, in its scope."""
        if self.registry is None or not isinstance(command, AcceptPlan):
            return {}
        try:
            names = normalise_plan(command.plan).tool_names - set(self._catalog)
        except PlanFormError:
            return {}
        return await self.registry.registered_specs(command.tenant, command.session_id, names)

    async def owned_plan(self, tenant: str, subject: str, plan_id: str) -> PlanState:
        """The subject's plan of that id (empty, on its own stream, when the subject has none)."""
        return await owned_plan(self._store, tenant, subject, plan_id, self._mapper)

    async def _after(self, command: PlanCommand, stream_id: str, events: list[DomainEvent] | None) -> None:
        # A redelivered command asks for a run again: harmless (a finished plan's run is a
        # no-op) and it covers a crash between the append and the request.
        starts = events is None or any(isinstance(e, (PlanStarted, PlanStepGranted)) for e in events)
        if starts and isinstance(command, (AcceptPlan, ExecutePlan)):
            await self._request_run(stream_id)

    def _decide(
        self, command: PlanCommand, state: PlanState, registered: Mapping[str, ToolSpec]
    ) -> tuple[str, list[DomainEvent]]:
        if isinstance(command, AcceptPlan):
            problem, events = self._accept(command, state, {**registered, **self._catalog})
        elif not state.exists or state.accepted is None or state.accepted.subject != command.subject:
            # owned_plan never loads another subject's plan; the owner check is a second guard.
            problem, events = ("unknown_plan", "unknown plan"), []
        elif isinstance(command, ExecutePlan):
            problem, events = self._execute(command, state)
        else:
            assert isinstance(command, CancelPlan)
            problem, events = self._cancel(command, state)
        if problem is not None:
            code, message = problem
            refused = PlanCommandRefused(
                command_id=command.command_id, plan_id=command.plan_id, error_code=code, message=message
            )
            return call_stream(command.tenant, command.command_id), [refused]
        return state.stream_id, events

    def _accept(
        self, command: AcceptPlan, state: PlanState, catalog: Mapping[str, ToolSpec]
    ) -> tuple[tuple[str, str] | None, list[DomainEvent]]:
        if state.exists:
            return ("plan_exists", f"a plan with id {command.plan_id!r} exists already"), []
        try:
            plan = with_derived_dependencies(normalise_plan(command.plan))
        except PlanFormError as error:
            return ("invalid_plan", str(error)), []
        problems = plan_problems(plan, catalog, command.roles) or plan_parameter_problems(plan, catalog)
        if problems:
            return ("invalid_plan", "; ".join(problems)), []
        if plan_hash(plan) != command.plan_hash or plan.plan_id != command.plan_id:
            return ("invalid_plan", "the plan does not match its hash"), []
        now = self._clock()
        accepted = PlanAccepted(
            command_id=command.command_id,
            plan_id=plan.plan_id,
            tenant=command.tenant,
            subject=command.subject,
            session_id=command.session_id,
            roles=list(command.roles),
            plan=plan.model_dump(mode="json"),
            plan_hash=command.plan_hash,
            seed=secrets.randbits(63),
            accepted_at=now,
        )
        if not command.execute:
            return None, [accepted]
        return None, [accepted, self._started(command, now, plan.timeout)]

    def _started(self, command: PlanCommand, now: float, timeout: float | None) -> PlanStarted:
        deadline = now + timeout if timeout is not None else None
        return PlanStarted(
            command_id=command.command_id, plan_id=command.plan_id, started_at=now, deadline=deadline
        )

    def _execute(
        self, command: ExecutePlan, state: PlanState
    ) -> tuple[tuple[str, str] | None, list[DomainEvent]]:
        assert state.plan is not None
        if state.started and state.plan.mode == "reactive" and not state.completed:
            return None, [
                PlanStepGranted(
                    command_id=command.command_id, plan_id=command.plan_id, granted_at=self._clock()
                )
            ]
        if state.started:
            return ("already_started", "the plan has been started already; see plan_status"), []
        return None, [self._started(command, self._clock(), state.plan.timeout)]

    def _cancel(
        self, command: CancelPlan, state: PlanState
    ) -> tuple[tuple[str, str] | None, list[DomainEvent]]:
        if state.completed:
            return ("already_finished", f"the plan has finished: {state.completion}"), []
        now = self._clock()
        requested = PlanCancelRequested(
            command_id=command.command_id, plan_id=command.plan_id, reason=command.reason, requested_at=now
        )
        if state.started:
            return None, [requested]
        # Nothing runs yet: the plan ends here and no executor is needed.
        return None, [requested, PlanCompleted(plan_id=command.plan_id, status="cancelled", finished_at=now)]
