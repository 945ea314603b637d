"""One task attempt's tool call: which tool, under whose roles, through which runner.

The executor (executor.py) decides when an attempt runs; this module runs it. A built-in
tool is checked (roles, the rate gate, its arguments) and run by the worker's runner
(consumers/tools.py). A tool that needs a session goes through the CommandHandler with a
command id derived from the run (the accepting command's random id), task and attempt, so
its call lands in the session stream exactly once however often the attempt is resumed, and
no other plan, however identical, shares the id. A registered or upstream tool is found in
the plan's scope and run as a recorded CallTool (calls.py). Every failure is a TaskResult,
never an exception, so one tool's bug does not stop the plan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp_ledger.checks.arguments import check_arguments
from mcp_ledger.checks.validator import compile_schema
from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.plans.calls import recorded_call, unless_safe
from mcp_ledger.consumers.plans.stream import task_command_id
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolRunner
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.plans.decisions import TaskResult
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.projections.registry.catalog import ToolCatalog

log = logging.getLogger(__name__)

TaskGate = Callable[[CallTool], Awaitable[TaskResult | None]]
"""Admits a task attempt just before it runs (the caller's rate limit: wiring/plans.py); a
TaskResult refuses it (error code `rate_limited`, retryable) and the tool never runs.
Compensations are not charged: they undo charged work, and refusing one would leave it done."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """What a launched asyncio task is running."""

    task_id: str
    attempt: int
    compensation: bool = False


class AttemptCalls:
    """Runs the tool of one task attempt and turns its outcome into a TaskResult."""

    def __init__(self, catalog: Mapping[str, ToolSpec], runners: Mapping[str, ToolRunner]) -> None:
        self._catalog = catalog
        self._runners = runners
        self._validators = {name: compile_schema(spec.input_schema) for name, spec in catalog.items()}
        self.calls: CommandHandler | None = None
        """Runs session-bound tasks; set after construction when the handler needs the executor."""
        self.registry: ToolCatalog | None = None
        """Where tasks naming a registered or upstream tool find it; set by the wiring."""
        self.gate: TaskGate | None = None
        """Charges every task attempt to its plan's caller; set by the wiring when limits apply."""

    async def call(
        self, state: PlanState, attempt: Attempt, tool_name: str, parameters: dict[str, Any]
    ) -> TaskResult:
        """Run `tool_name` for `attempt` of the plan in `state`."""
        accepted = state.accepted
        assert accepted is not None
        spec = self._catalog.get(tool_name)
        if spec is None:
            return await self._call_registered(state, attempt, tool_name, parameters)
        denied = access_problem(accepted.roles, spec.minimum_role, spec.allowed_roles)
        if denied is not None:
            return TaskResult(error_code="forbidden", message=denied)
        command = self._command(state, attempt, tool_name, parameters, in_session=spec.needs_session)
        refused = await self._refusal(command, attempt)
        if refused is not None:
            return refused
        if spec.needs_session:
            return await self._call_in_session(command)
        problem = await check_arguments(spec.input_schema, parameters, self._validators.get(tool_name))
        if problem is not None:
            return TaskResult(error_code="invalid_arguments", message=problem)
        return await self._run_builtin(command, accepted.plan_id)

    async def _refusal(self, command: CallTool, attempt: Attempt) -> TaskResult | None:
        if self.gate is None or attempt.compensation:
            return None
        return await self.gate(command)

    async def _run_builtin(self, command: CallTool, plan_id: str) -> TaskResult:
        runner = self._runners.get(command.tool_name)
        if runner is None:
            return TaskResult(
                error_code="tool_unavailable", message=f"no runner for {command.tool_name!r} on this worker"
            )
        try:
            outcome = await runner(
                ToolInvocation(command=command, session=Session(stream_id=command.stream_id))
            )
        except ToolExecutionError as error:
            return TaskResult(error_code=error.code, message=error.message)
        except Exception as error:  # boundary: a tool's bug is a failed attempt, not a dead executor
            log.exception("tool %s failed in plan %s", command.tool_name, plan_id)
            return TaskResult(error_code="tool_error", message=f"{type(error).__name__}: {error}")
        output = outcome.structured if outcome.structured is not None else {"content": outcome.content}
        return TaskResult(output=output)

    def _command(
        self,
        state: PlanState,
        attempt: Attempt,
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
        self, state: PlanState, attempt: Attempt, tool_name: str, parameters: dict[str, Any]
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
        refused = await self._refusal(command, attempt)
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


async def bounded(call: Awaitable[TaskResult], limit_s: float | None) -> TaskResult:
    """The attempt's result, or a `timeout` failure once the task's time limit passed."""
    if limit_s is None:
        return await call
    try:
        async with asyncio.timeout(limit_s):
            return await call
    except TimeoutError:
        return TaskResult(error_code="timeout", message=f"no result within {limit_s:g}s")
