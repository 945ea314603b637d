"""The ttl purge of MCP tasks on SQLite with real keys (consumers/tasks/purge.py, content.py):
an expired task is purged once however many workers sweep, its own key is destroyed so its
result is unreadable (also with the KEK and the subject's key at hand), a task not yet due and
the subject's other tasks stay readable, and a sweep reads and purges a bounded amount."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.consumers.tasks.log import StoredTaskLog, stored_task_log
from mcp_ledger.consumers.tasks.purge import TaskPurger
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.streams import new_task_id, task_stream
from mcp_ledger.domain.tasks.events import McpTaskCompleted, McpTaskCreated
from mcp_ledger.domain.tasks.state import fold
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine, open_event_store

SECRET = "the launch code is 0000"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[SqlEventStore, StoredTaskLog]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    store = await open_event_store(url)
    keys = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    yield store, stored_task_log(store, RecordSealer(keys))
    await keys.close()
    await store.close()


async def _task(tasks: StoredTaskLog, subject: str, ttl_ms: int, created_at: float) -> str:
    task_id = new_task_id()
    created = McpTaskCreated(
        task_id=task_id,
        tenant="t1",
        subject=subject,
        tool_name="echo",
        command_id=f"cmd-{task_id}",
        ttl_ms=ttl_ms,
        poll_interval_ms=500,
        created_at=created_at,
    )
    done = McpTaskCompleted(result={"text": SECRET}, is_error=False, completed_at=created_at)
    await tasks.append("t1", subject, task_id, 0, [created], command_id=created.command_id)
    await tasks.append("t1", subject, task_id, 1, [done], command_id=created.command_id)
    return task_id


async def _result(tasks: StoredTaskLog, subject: str, task_id: str) -> object:
    _, events = await tasks.load("t1", subject, task_id)
    [completed] = [event for event in events if isinstance(event, McpTaskCompleted)]
    return completed.result


async def test_an_expired_task_is_purged_once_by_several_workers_and_its_result_is_shredded(
    stack: tuple[SqlEventStore, StoredTaskLog],
) -> None:
    store, tasks = stack
    clock = Clock()
    expired = await _task(tasks, "alice", 1_000, clock.now)
    kept = await _task(tasks, "alice", 3_600_000, clock.now)
    assert await _result(tasks, "alice", expired) == {"text": SECRET}
    clock.now += 5
    workers = [TaskPurger(store, tasks, clock=clock) for _ in range(3)]
    purged = list(await asyncio.gather(*(worker.sweep() for worker in workers)))
    purged += [await worker.sweep() for worker in workers]
    assert sum(purged) == 1
    kinds = [event.event_type for event in await store.read_stream(task_stream("t1", "alice", expired))]
    assert kinds == ["McpTaskCreated", "McpTaskCompleted", "McpTaskPurged"]
    assert await _result(tasks, "alice", expired) != {"text": SECRET}
    _, events = await tasks.load("t1", "alice", expired)
    state = fold(events)
    assert state is not None
    assert state.purged
    assert state.result is None
    assert await _result(tasks, "alice", kept) == {"text": SECRET}


async def test_a_task_not_yet_due_is_not_purged_until_its_ttl_runs_out(
    stack: tuple[SqlEventStore, StoredTaskLog],
) -> None:
    store, tasks = stack
    clock = Clock()
    task_id = await _task(tasks, "bob", 10_000, clock.now)
    purger = TaskPurger(store, tasks, clock=clock)
    assert await purger.sweep() == 0
    clock.now += 9
    assert await purger.sweep() == 0
    assert await _result(tasks, "bob", task_id) == {"text": SECRET}
    clock.now += 2
    assert await purger.sweep() == 1


async def test_a_sweep_reads_and_purges_a_bounded_amount(stack: tuple[SqlEventStore, StoredTaskLog]) -> None:
    store, tasks = stack
    clock = Clock()
    for _ in range(3):
        await _task(tasks, "carol", 1_000, clock.now)
    clock.now += 5
    purger = TaskPurger(store, tasks, batch=2, clock=clock)
    counts = [await purger.sweep() for _ in range(6)]
    assert max(counts) <= 2
    assert sum(counts) == 3
