"""Plans on real services: the API and workers in their own processes, Kafka, PostgreSQL and
Redis, with real access tokens. A worker killed mid-plan leaves its plan-run message to the
group; another worker resumes the plan from the event store, runs it to completion and never
runs a task whose success was recorded."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.kek import KekRing, parse_keks
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.streams import plan_stream
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack, distributed_stack
from tests.support.processes import LedgerProcess

pytestmark = pytest.mark.integration

RUNS = re.compile(r"plan (\S+): task (\S+) attempt (\d+) runs")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DistributedStack]:
    """A stack of its own (its workers get killed): one API replica and the worker to kill."""
    with distributed_stack(tmp_path, apis=1, workers=1, extra={"LEDGER_LOG_LEVEL": "DEBUG"}) as running:
        yield running


def _chain(plan_id: str, steps: int, ms: int) -> dict[str, object]:
    tasks: list[dict[str, object]] = [{"id": "start", "tool_name": "echo", "parameters": {"text": "go"}}]
    for index in range(steps):
        previous = tasks[-1]["id"]
        tasks.append(
            {"id": f"s{index}", "tool_name": "sleep", "parameters": {"ms": ms}, "dependencies": [previous]}
        )
    last = {"id": "end", "tool_name": "echo", "parameters": {"text": "${start.output.text}"}}
    return {"plan_id": plan_id, "tasks": [*tasks, {**last, "dependencies": [tasks[-1]["id"]]}]}


def _runs(*workers: LedgerProcess) -> Counter[str]:
    return Counter(match.group(2) for proc in workers for match in RUNS.finditer(proc.output()))


async def _succeeded_tasks(stack: DistributedStack, stream_id: str) -> list[str]:
    """The ids of the tasks recorded as succeeded (task ids are sealed: opened with the KEK)."""
    store = await open_event_store(stack.store_url)
    ring = KekRing(parse_keks(stack.env["LEDGER_KEK"]))
    keys = SqlKeyStore(create_store_engine(stack.store_url), ring, owns_engine=True)
    try:
        mapper = EventMapper(RecordSealer(keys))
        events = [await mapper.open(e) for e in await store.read_stream(stream_id)]
    finally:
        await keys.close()
        await store.close()
    return [e.data["task_id"] for e in events if e.event_type == "TaskSucceeded"]


async def test_a_plan_whose_worker_is_killed_is_resumed_by_another_without_rerunning_finished_tasks(
    stack: DistributedStack, unique: str
) -> None:
    [doomed], [api] = stack.workers, stack.apis
    tenant = f"tenant-{unique}"
    stream = plan_stream(tenant, "planner", "long")
    async with mcp_client(api.url, token=stack.token(tenant, "planner", ("operator",))) as client:
        structured(await client.call_tool("create_plan", {"plan": _chain("long", 6, 300), "execute": True}))
        await asyncio.to_thread(doomed.wait_for_output, "task s2 attempt 1 runs", 60)
        survivor = stack.start_worker()
        doomed.kill()
        finished_before_kill = await _succeeded_tasks(stack, stream)
        status = structured(await client.call_tool("plan_status", {"plan_id": "long", "wait_seconds": 120}))
    assert status["status"] == "succeeded"
    assert status["tasks"]["end"]["output"] == {"text": "go"}  # read from the Redis projection
    assert {"start", "s0", "s1"} <= set(finished_before_kill)
    runs = _runs(doomed, survivor)
    assert "resuming" in survivor.output()
    for task_id in finished_before_kill:
        assert runs[task_id] == 1, (task_id, runs)
    assert all(count <= 2 for count in runs.values()), runs  # only the attempt in flight may run again
    succeeded = await _succeeded_tasks(stack, stream)
    assert sorted(succeeded) == sorted(["start", "end", *(f"s{i}" for i in range(6))])
