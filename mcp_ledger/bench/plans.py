"""`mcp-ledger bench plans`: the durable executor on the embedded stack (SQLite event store,
outbox relay to the in-process bus) running seeded synthetic DAGs of fake tools with a fixed
latency (asyncio.sleep).

Measures, per shape and size: makespan against the critical path (the physical limit) and
against sequential execution; executor overhead per task (the same graph with a zero-latency
tool: all that is left is deciding, appending and publishing); and the success rate of plans
whose tool fails transiently at a seeded rate, retried with backoff.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mcp_ledger.bench.dags import critical_path_length, dag
from mcp_ledger.consumers.plans.commands import PlanCommandHandler
from mcp_ledger.consumers.plans.executor import PlanExecutor
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome, ToolRunner
from mcp_ledger.domain.commands import AcceptPlan
from mcp_ledger.domain.plans.model import normalise_plan, plan_hash
from mcp_ledger.domain.plans.validation import with_derived_dependencies
from mcp_ledger.domain.streams import plan_stream
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.outbox import OutboxRelay

Progress = Callable[[str], None]
FAKE = ToolSpec(name="fake", title="fake", description="fixed latency", input_schema={"type": "object"})


@dataclass(frozen=True)
class ShapeResult:
    shape: str
    tasks: int
    latency_ms: float
    critical_path_ms: float
    sequential_ms: float
    makespan_ms: float
    vs_critical_path: float
    speedup_vs_sequential: float
    overhead_per_task_ms: float


@dataclass(frozen=True)
class FaultResult:
    plans: int
    tasks_per_plan: int
    fault_rate: float
    max_attempts: int
    succeeded_plans: int
    success_rate: float
    attempts: int
    retries: int


def fake_runner(latency: float, fault_rate: float = 0.0, seed: int = 0) -> ToolRunner:
    """The fake tool: sleeps `latency` s, fails transiently at `fault_rate` (seeded)."""
    rng = random.Random(seed)

    async def run(call: ToolInvocation) -> ToolOutcome:
        if latency:
            await asyncio.sleep(latency)
        if fault_rate and rng.random() < fault_rate:
            raise ToolExecutionError("transient", "injected fault")
        return ToolOutcome([], {"n": call.command.arguments.get("n")})

    return run


class PlanBench:
    """One SQLite store, relay and bus, reused by every measured plan."""

    def __init__(self, store: EventStore, relay: OutboxRelay) -> None:
        self._store = store
        self._relay = relay
        self._count = 0
        # A shared PostgreSQL store keeps every run's plans: a fresh tenant per run.
        self.tenant = f"bench-{uuid.uuid4().hex[:8]}"

    async def _publish(self, events: Sequence[StoredEvent]) -> None:
        await self._relay.publish(events)

    async def run_plan(
        self, tasks: list[dict[str, Any]], runner: ToolRunner, **plan_options: Any
    ) -> tuple[str | None, float]:
        """Accept and execute one plan; (final status, seconds from start to end)."""
        self._count += 1
        raw = {"plan_id": f"bench-{self._count}", "tasks": tasks, "max_parallel_tasks": 1000, **plan_options}
        plan = with_derived_dependencies(normalise_plan(raw))
        runs: list[str] = []

        async def request_run(stream_id: str) -> None:
            runs.append(stream_id)

        catalog = {"fake": FAKE}
        commands = PlanCommandHandler(self._store, catalog, request_run, self._publish, time.time)
        command = AcceptPlan(
            tenant=self.tenant,
            subject="bench",
            roles=("admin",),
            plan_id=plan.plan_id,
            plan=plan.model_dump(mode="json"),
            plan_hash=plan_hash(plan),
            execute=True,
        )
        executor = PlanExecutor(self._store, catalog, {"fake": runner}, self._publish)
        started = time.perf_counter()
        await commands.handle(command)
        status = await executor.run(runs[0])
        elapsed = time.perf_counter() - started
        await self._relay.flush_marks()
        return status, elapsed

    async def shape(self, shape: str, size: int, latency: float, seed: int) -> ShapeResult:
        tasks = dag(shape, size, seed)
        status, makespan = await self.run_plan(tasks, fake_runner(latency))
        if status != "succeeded":
            raise RuntimeError(f"{shape}/{size} ended {status}")
        _, bare = await self.run_plan(tasks, fake_runner(0.0))
        critical = critical_path_length(tasks) * latency
        return ShapeResult(
            shape=shape,
            tasks=size,
            latency_ms=latency * 1000,
            critical_path_ms=critical * 1000,
            sequential_ms=size * latency * 1000,
            makespan_ms=makespan * 1000,
            vs_critical_path=makespan / critical if critical else 0.0,
            speedup_vs_sequential=size * latency / makespan,
            overhead_per_task_ms=bare / size * 1000,
        )

    async def faults(
        self, plans: int, size: int, fault_rate: float, max_attempts: int, seed: int
    ) -> FaultResult:
        succeeded = attempts = retries = 0
        for index in range(plans):
            tasks = dag("layered", size, seed + index)
            retry = {"max_attempts": max_attempts, "initial": 0.001, "max": 0.01}
            tasks = [{**task, "retry": retry} for task in tasks]
            status, _ = await self.run_plan(tasks, fake_runner(0.001, fault_rate, seed + index))
            succeeded += status == "succeeded"
            events = await self._store.read_stream(plan_stream(self.tenant, "bench", f"bench-{self._count}"))
            attempts += sum(e.event_type == "TaskStarted" for e in events)
            retries += sum(e.event_type == "TaskRetryScheduled" for e in events)
        return FaultResult(
            plans=plans,
            tasks_per_plan=size,
            fault_rate=fault_rate,
            max_attempts=max_attempts,
            succeeded_plans=succeeded,
            success_rate=succeeded / plans,
            attempts=attempts,
            retries=retries,
        )


async def run_plans_bench(
    sizes: Sequence[int],
    latency: float,
    big_latency: float,
    seed: int,
    progress: Progress,
    store_url: str | None = None,
) -> dict[str, Any]:
    """Every shape at every size, then the fault runs; returns the JSON report. The store is
    a fresh SQLite file (embedded) unless `store_url` names another (e.g. PostgreSQL)."""
    with tempfile.TemporaryDirectory() as directory:
        url = store_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await upgrade_to_head_async(url)
        store = await open_event_store(url)
        bus = InProcessBus()
        await bus.start()
        try:
            bench = PlanBench(store, OutboxRelay(store, bus, "ledger.events"))
            shapes = []
            for size in sizes:
                for shape in ("chain", "fan", "diamond", "layered"):
                    lat = latency if size <= 100 else big_latency
                    progress(f"{shape} with {size} tasks, {lat * 1000:g} ms each")
                    shapes.append(asdict(await bench.shape(shape, size, lat, seed)))
            progress("transient faults: 20 layered plans of 50 tasks, 20% faults, 5 attempts")
            faults = [
                asdict(await bench.faults(20, 50, 0.2, 5, seed)),
                asdict(await bench.faults(20, 50, 0.2, 1, seed)),
            ]
        finally:
            await bus.stop()
            await store.close()
    kind = "sqlite (embedded)" if store_url is None else url.split(":", 1)[0]
    return {"seed": seed, "store": kind, "shapes": shapes, "faults": faults}
