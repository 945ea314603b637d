"""The worker side of tasks/cancel (consumers/tasks/cancellation.py) on a SQLite store: a tool
of a cancelled task is stopped (or never started), a tool that ends first keeps its outcome,
a call that is no task is never watched, and another subject's cancellation stops nothing."""

from __future__ import annotations

import asyncio

import pytest

from mcp_ledger.consumers.tasks.cancellation import TaskCancellations, ToolStoppedError
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.streams import new_task_id, task_stream
from mcp_ledger.eventstore.ports import NewEvent
from mcp_ledger.eventstore.sql import SqlEventStore


def _call(task_id: str | None, subject: str = "alice") -> CallTool:
    return CallTool(tenant="t1", subject=subject, tool_name="sleep", task_id=task_id)


async def _cancel(
    store: SqlEventStore, task_id: str, subject: str = "alice", *, marked: str = "alice"
) -> None:
    event = NewEvent(
        event_type="McpTaskCancelled",
        data={"cancelled_at": 0.0},
        metadata={"tenant": "t1", "subject": marked},
    )
    await store.append(task_stream("t1", subject, task_id), 0, [event])


async def test_a_running_tool_is_stopped_when_its_task_is_cancelled(store: SqlEventStore) -> None:
    task_id, stopped = new_task_id(), asyncio.Event()

    async def tool() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "slept"

    cancellations = TaskCancellations(store, poll_s=0.01)
    running = asyncio.create_task(cancellations.run(_call(task_id), tool()))
    await asyncio.sleep(0.05)
    await _cancel(store, task_id)
    async with asyncio.timeout(5):
        with pytest.raises(ToolStoppedError):
            await running
    assert stopped.is_set()


async def test_a_tool_of_a_task_cancelled_before_it_started_never_runs(store: SqlEventStore) -> None:
    task_id, ran = new_task_id(), []

    async def tool() -> str:
        ran.append(True)
        return "ran"

    await _cancel(store, task_id)
    with pytest.raises(ToolStoppedError):
        await TaskCancellations(store, poll_s=0.01).run(_call(task_id), tool())
    assert ran == []


async def test_a_tool_that_ends_first_keeps_its_outcome(store: SqlEventStore) -> None:
    async def tool() -> str:
        return "done"

    assert await TaskCancellations(store, poll_s=0.01).run(_call(new_task_id()), tool()) == "done"


async def test_another_subjects_record_never_stops_the_callers_tool(store: SqlEventStore) -> None:
    task_id = new_task_id()
    await _cancel(store, task_id, marked="mallory")  # in alice's stream, but not alice's record
    await _cancel(store, task_id, subject="mallory")  # the same id under another subject

    async def tool() -> str:
        await asyncio.sleep(0.1)
        return "done"

    cancellations = TaskCancellations(store, poll_s=0.01)
    assert await cancellations.run(_call(task_id), tool()) == "done"


async def test_a_call_that_is_no_task_is_not_watched(store: SqlEventStore) -> None:
    async def tool() -> str:
        return "plain"

    assert await TaskCancellations(store, poll_s=0.01).run(_call(None), tool()) == "plain"
