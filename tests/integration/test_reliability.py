"""Reliability under a steady load of tool calls and plans through API and worker processes
on real Kafka, PostgreSQL and Redis: a worker is SIGKILLed, or Kafka, PostgreSQL or Redis is
restarted, in the middle. Agents may see errors during the outage; afterwards the recorded
history must be exact (tests/support/history.py) and the projections must converge.

The service restarts disturb everyone using the shared services, so those scenarios are
marked `disruptive`: CI runs them alone, last.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.integration.databases import private_database
from tests.support.convergence import (
    plan_views_converge,
    published_commands,
    unpublished_positions,
    views_converge,
)
from tests.support.environment import services_script_env
from tests.support.history import load_history, plan_statuses, plan_successes, problems_in
from tests.support.load import LoadReport, run_load, wait_for
from tests.support.processes import REPO, LedgerProcess, isolated_env, ledger_processes, start_ledger

# The bounds below add up to more than the suite's default per-test timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

WARM_CALLS = 15
"""Calls answered before the disruption, and again after it, before the load stops."""
RECOVERY_SECONDS = 120.0
SETTLE_SECONDS = 90.0
RESTART_SECONDS = 240.0
PLAN_TASKS_ONCE = Counter({"a": 1, "b": 1, "c": 1})
"""Every task of the load's plan (tests/support/load.py), each succeeded exactly once."""

Disruption = Callable[[list[LedgerProcess], dict[str, str], Path], Awaitable[None]]


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with private_database(services_env) as env:
        yield env


@pytest.fixture
def env(migrated: dict[str, str], unique: str) -> dict[str, str]:
    return {
        **isolated_env(migrated, unique, topics="r"),
        "LEDGER_CALL_TIMEOUT": "8",
    }


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    with ledger_processes(env, tmp_path) as started:
        yield started


async def _under_load(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, disrupt: Disruption
) -> LoadReport:
    start_ledger(procs, env, tmp_path, "worker")
    api = start_ledger(procs, env, tmp_path, "api")
    await asyncio.to_thread(api.wait_healthy)
    report, stop = LoadReport(), asyncio.Event()
    load = asyncio.create_task(run_load([api.url], "plan", report, stop))
    try:
        await wait_for(lambda: report.ok >= WARM_CALLS, "the load warms up", 60)
        await disrupt(procs, env, tmp_path)
        resumed = report.ok
        await wait_for(lambda: report.ok >= resumed + WARM_CALLS, "calls succeed again", RECOVERY_SECONDS)
    finally:
        stop.set()
        await asyncio.wait_for(load, 60)
    return report


async def _assert_history_exact(env: dict[str, str], report: LoadReport, unique: str) -> None:
    tenant, bus = env["LEDGER_LOCAL_TENANT"], env["LEDGER_BUS"]
    every, calls = await published_commands(bus, f"{env['LEDGER_TOPIC_PREFIX']}ledger.commands")
    assert len(every) >= 2 * WARM_CALLS
    assert report.plans, "the load created no plan: the plan checks below would prove nothing"

    async def settled() -> list[str]:
        history = await load_history(env, tenant)
        pending = [f"{history.outbox_rows} outbox rows unpublished"] if history.outbox_rows else []
        return problems_in(history, every, calls) + pending

    try:
        async with asyncio.timeout(SETTLE_SECONDS):
            while problems := await settled():
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(f"history not exact after {SETTLE_SECONDS:.0f}s: {problems[:10]}") from None
    history = await load_history(env, tenant)
    lost = await unpublished_positions(bus, f"{env['LEDGER_TOPIC_PREFIX']}ledger.events", history)
    assert lost == [], f"stored events never published: {lost[:20]}"
    successes, statuses = plan_successes(history), plan_statuses(history)
    for plan_id in report.plans:  # accepted and running, as the agent was told: done exactly once
        assert (statuses.get(plan_id), successes.get(plan_id)) == (["succeeded"], PLAN_TASKS_ONCE), plan_id
    assert await views_converge(env, tenant, f"rebuilt-{unique}:", 60) > 0
    assert await plan_views_converge(env, tenant, 30) >= len(report.plans)


async def _kill_a_worker(procs: list[LedgerProcess], env: dict[str, str], tmp_path: Path) -> None:
    worker = next(p for p in procs if not p.listens)
    worker.kill()
    start_ledger(procs, env, tmp_path, "worker")


async def _lose_the_state(procs: list[LedgerProcess], env: dict[str, str], tmp_path: Path) -> None:
    """What a Redis restart without persistence does to this deployment: every key is gone."""
    client = Redis.from_url(env["LEDGER_STATE"])
    try:
        keys = [key async for key in client.scan_iter(match=f"{env['LEDGER_STATE_PREFIX']}*", count=1000)]
        assert keys
        await client.delete(*keys)
    finally:
        await client.aclose()


def _restart(service: str) -> Disruption:
    async def restart(procs: list[LedgerProcess], env: dict[str, str], tmp_path: Path) -> None:
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "scripts/services.sh", f"restart-{service}"],
            cwd=REPO,
            env=services_script_env(),
            capture_output=True,
            timeout=RESTART_SECONDS,
        )
        # Say why: a bare CalledProcessError would hide the script's own message.
        assert done.returncode == 0, f"restart-{service} failed: {done.stderr.decode()[-2000:]}"

    return restart


async def test_a_worker_killed_under_load_leaves_an_exact_history(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str
) -> None:
    report = await _under_load(env, procs, tmp_path, _kill_a_worker)
    await _assert_history_exact(env, report, unique)


async def test_the_state_store_losing_its_data_under_load_is_refilled_from_the_store(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str
) -> None:
    report = await _under_load(env, procs, tmp_path, _lose_the_state)
    await _assert_history_exact(env, report, unique)


@pytest.mark.disruptive
@pytest.mark.parametrize("service", ["kafka", "postgres", "redis"])
async def test_a_service_restarted_under_load_leaves_an_exact_history(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str, service: str
) -> None:
    report = await _under_load(env, procs, tmp_path, _restart(service))
    await _assert_history_exact(env, report, unique)
