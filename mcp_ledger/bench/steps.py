"""`mcp-ledger bench steps`: durable steps side by side with DBOS Transact on one PostgreSQL.

The same shape on both: a plan (a DBOS workflow) of sequential no-op steps, run to the end
and awaited, with 1 and with N steps. Per extra step = (t(N) - t(1)) / (N - 1); fixed cost per
plan = t(1) - one step. Beside them, one bare INSERT and commit on the same server: the floor
a durable step cannot go under. mcp-ledger runs its plan executor on the event store (accept,
execute, TaskStarted/TaskSucceeded per step, outbox, in-process bus); DBOS its workflow and step
records in its system database. Each system gets a scratch database, dropped afterwards.

DBOS is imported only here, and only when the bench runs: it is the `bench` extra
(`uv sync --extra bench`), not a dependency of the gateway.
"""

from __future__ import annotations

import importlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.bench.dags import dag
from mcp_ledger.bench.plans import PlanBench, fake_runner
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.outbox import OutboxRelay

Timed = Callable[[int], Awaitable[None]]


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def scratch_database(server_url: str, label: str) -> AsyncIterator[str]:
    """A new, empty database on the server `server_url` names (its URL), dropped afterwards."""
    name = f"ledger_bench_{label}_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _median_ms(run: Timed, steps: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await run(steps)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _costs(run: Timed, steps: int, repeats: int) -> dict[str, float]:
    await run(1)  # warm-up: connections, statement caches
    one, many = await _median_ms(run, 1, repeats), await _median_ms(run, steps, repeats)
    per_step = (many - one) / (steps - 1)
    return {
        "one_step_ms": round(one, 3),
        f"{steps}_steps_ms": round(many, 3),
        "per_step_ms": round(per_step, 3),
        "fixed_ms": round(one - per_step, 3),
    }


async def ledger_costs(server_url: str, steps: int, repeats: int) -> dict[str, float]:
    """mcp-ledger's plan executor: chain plans of zero-latency tasks on a PostgreSQL store."""
    async with scratch_database(server_url, "plans") as url:
        await upgrade_to_head_async(url)
        store = await open_event_store(url)
        bus = InProcessBus()
        await bus.start()
        try:
            bench = PlanBench(store, OutboxRelay(store, bus, "ledger.events"))

            async def run(count: int) -> None:
                status, _ = await bench.run_plan(dag("chain", count, 0), fake_runner(0.0))
                if status != "succeeded":
                    raise RuntimeError(f"a {count}-step plan ended {status}")

            return await _costs(run, steps, repeats)
        finally:
            await bus.stop()
            await store.close()


async def dbos_costs(server_url: str, steps: int, repeats: int) -> dict[str, float]:
    """DBOS Transact: a workflow of `steps` sequential no-op steps, its system database on the
    same server.

    Raises:
        ModuleNotFoundError: the `bench` extra (dbos) is not installed.
    """
    dbos_module: Any = importlib.import_module("dbos")
    dbos: Any = dbos_module.DBOS
    async with scratch_database(server_url, "dbos") as url:
        system_url = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        dbos(config={"name": "ledger-bench", "system_database_url": system_url, "log_level": "WARNING"})

        @dbos.step()  # type: ignore[untyped-decorator]
        async def noop(index: int) -> int:
            return index

        @dbos.workflow()  # type: ignore[untyped-decorator]
        async def flow(count: int) -> int:
            for index in range(count):
                await noop(index)
            return count

        dbos.launch()
        try:

            async def run(count: int) -> None:
                await flow(count)

            return await _costs(run, steps, repeats)
        finally:
            dbos.destroy(destroy_registry=True)


async def bare_insert_ms(server_url: str, repeats: int) -> float:
    """Median of one INSERT and its commit on the server (asyncpg through SQLAlchemy)."""
    async with scratch_database(server_url, "insert") as url:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id bigserial PRIMARY KEY, v text)"))
            times = []
            for index in range(repeats + 10):
                started = time.perf_counter()
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": str(index)})
                if index >= 10:
                    times.append((time.perf_counter() - started) * 1000)
            return round(statistics.median(times), 3)
        finally:
            await engine.dispose()


async def run_steps_bench(server_url: str, steps: int, repeats: int) -> dict[str, Any]:
    """Both systems and the bare insert, in this order, in one run; the JSON-ready report."""
    ledger = await ledger_costs(server_url, steps, repeats)
    dbos = await dbos_costs(server_url, steps, repeats)
    insert = await bare_insert_ms(server_url, repeats * 10)
    return {
        "benchmark": "steps",
        "steps": steps,
        "repeats": repeats,
        "mcp_ledger": ledger,
        "dbos": dbos,
        "bare_insert_commit_ms": insert,
        "per_step_ratio_vs_dbos": round(ledger["per_step_ms"] / dbos["per_step_ms"], 2),
        "fixed_ratio_vs_dbos": round(ledger["fixed_ms"] / dbos["fixed_ms"], 2)
        if dbos["fixed_ms"] > 0
        else None,
    }
