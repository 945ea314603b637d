"""Plans in tests: accept a raw plan through the real command handler, tools that count."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp_ledger.consumers.plans.commands import PlanCommandHandler
from mcp_ledger.consumers.plans.executor import PlanExecutor
from mcp_ledger.consumers.tools import (
    ToolExecutionError,
    ToolInvocation,
    ToolOutcome,
    ToolRunner,
    structured_outcome,
)
from mcp_ledger.domain.commands import AcceptPlan
from mcp_ledger.domain.plans.model import normalise_plan, plan_hash
from mcp_ledger.domain.plans.validation import with_derived_dependencies
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.ports import EventStore, StoredEvent

OPEN_SCHEMA: dict[str, Any] = {"type": "object"}


def tool(name: str, **extra: Any) -> ToolSpec:
    """A test tool that takes any object."""
    return ToolSpec(name=name, title=name, description=name, input_schema=OPEN_SCHEMA, **extra)


@dataclass
class Recorder:
    """Tools whose every execution is recorded, in order, with arguments; some fail or wait."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    failures_left: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: asyncio.Event | None = None

    def runner(self, name: str) -> ToolRunner:
        async def run(call: ToolInvocation) -> ToolOutcome:
            label = str(call.command.arguments.get("label", name))
            self.calls.append((name, dict(call.command.arguments)))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                if self.gate is not None and name == "wait":
                    await self.gate.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.failures_left[label] > 0:
                    self.failures_left[label] -= 1
                    raise ToolExecutionError("transient", f"{label} failed, try again")
                return structured_outcome(
                    self.outputs.get(label, {"label": label, "args": call.command.arguments})
                )
            finally:
                self.running -= 1

        return run

    def runners(self, names: Sequence[str]) -> dict[str, ToolRunner]:
        return {name: self.runner(name) for name in names}

    def labels(self, name: str | None = None) -> list[str]:
        return [
            str(args.get("label", tool_name)) for tool_name, args in self.calls if name in (None, tool_name)
        ]


async def _no_publish(events: Sequence[StoredEvent]) -> None:
    return None


async def accept(
    store: EventStore,
    catalog: Mapping[str, ToolSpec],
    raw: dict[str, Any],
    *,
    roles: tuple[str, ...] = ("admin",),
    execute: bool = True,
    tenant: str = "t",
) -> str:
    """Accept (and start) a plan through the PlanCommandHandler; returns its stream id."""
    plan = with_derived_dependencies(normalise_plan(raw))
    runs: list[str] = []

    async def request_run(stream_id: str) -> None:
        runs.append(stream_id)

    handler = PlanCommandHandler(store, catalog, request_run, _no_publish, time.time)
    command = AcceptPlan(
        tenant=tenant,
        subject="someone",
        roles=roles,
        plan_id=plan.plan_id,
        plan=plan.model_dump(mode="json"),
        plan_hash=plan_hash(plan),
        execute=execute,
    )
    await handler.handle(command)
    return command.stream_id


def executor(
    store: EventStore, catalog: Mapping[str, ToolSpec], runners: Mapping[str, ToolRunner], **options: Any
) -> PlanExecutor:
    return PlanExecutor(store, catalog, runners, _no_publish, poll_interval=0.02, **options)


async def event_types(store: EventStore, stream_id: str) -> list[str]:
    return [event.event_type for event in await store.read_stream(stream_id)]
