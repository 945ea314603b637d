"""A cancelled task's tool is stopped on its worker (embedded gateway, 2026-07-28 wire): the
worker watching the task's stream cancels the running call, the command is recorded as
`ToolFailed(cancelled)` long before the tool would have ended, the tool never succeeds, and
the task holds one cancellation and answers `cancelled`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mcp_ledger.eventstore.ports import CommandKey
from mcp_ledger.eventstore.sql import open_event_store
from tests.e2e.test_mcp_tasks import Caller, _events
from tests.support.embedded import RunningGateway, embedded_settings, gateway

SLEEP_MS = 30_000


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(update={"task_cancel_poll_ms": 50})
    async with gateway(settings) as running:
        yield running


async def _command_outcome(gw: RunningGateway, task_id: str, within_s: float) -> list[tuple[str, Any]]:
    """The events the task's command recorded, once it has a terminal one."""
    [(_, created)] = [item for item in await _events(gw, task_id) if item[0] == "McpTaskCreated"]
    key = CommandKey(created["tenant"], created["subject"], created["command_id"])
    store = await open_event_store(gw.runtime.settings.store_url)
    try:
        async with asyncio.timeout(within_s):
            while True:
                recorded = await store.events_for_command(key)
                if any(event.event_type in {"ToolSucceeded", "ToolFailed"} for event in recorded):
                    return [(event.event_type, event.data) for event in recorded]
                await asyncio.sleep(0.05)
    finally:
        await store.close()


async def test_cancelling_a_running_task_stops_its_tool_and_records_the_cancellation_once(
    gw: RunningGateway,
) -> None:
    alice = Caller(gw, "alice")
    created = await alice.call("sleep", {"ms": SLEEP_MS})
    await asyncio.sleep(0.5)  # the worker is inside the sleep
    cancelled_at = time.monotonic()
    ack = await alice.task("tasks/cancel", created["taskId"])
    assert ack["result"]["resultType"] == "complete"
    recorded = await _command_outcome(gw, created["taskId"], within_s=10)
    assert time.monotonic() - cancelled_at < SLEEP_MS / 1000 / 2
    terminal = [(kind, data) for kind, data in recorded if kind in {"ToolSucceeded", "ToolFailed"}]
    assert [(kind, data["error_code"]) for kind, data in terminal] == [("ToolFailed", "cancelled")]
    assert (await alice.task("tasks/get", created["taskId"]))["result"]["status"] == "cancelled"
    assert (await alice.task("tasks/cancel", created["taskId"]))["result"]["resultType"] == "complete"
    types = [event_type for event_type, _ in await _events(gw, created["taskId"])]
    assert types == ["McpTaskCreated", "McpTaskCancelled"]


async def test_a_task_that_is_not_cancelled_runs_its_tool_to_the_end(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    created = await alice.call("sleep", {"ms": 400})
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed"
    assert done["result"]["structuredContent"] == {"slept_ms": 400}
