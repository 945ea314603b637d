"""The ttl purge on the embedded gateway: once a task's ttl has run out, the worker's sweep
records `McpTaskPurged` once and destroys the task's own key, so even someone holding the KEK
(the gateway's own runtime) reads the result as the erased placeholder, while the subject's
task whose ttl has not run out stays readable."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.consumers.tasks.log import stored_task_log
from mcp_ledger.domain.tasks.events import McpTaskCompleted
from mcp_ledger.eventstore.sql import open_event_store
from tests.e2e.test_mcp_tasks import Caller, _events
from tests.support.embedded import RunningGateway, embedded_settings, gateway


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"task_ttl_ms": 1000, "task_purge_interval_s": 0.2}
    )
    async with gateway(settings) as running:
        yield running


async def _result_with_the_keys(gw: RunningGateway, task_id: str) -> str:
    """The stored result as the gateway's own keys open it (what a KEK holder could read)."""
    [(_, created)] = [item for item in await _events(gw, task_id) if item[0] == "McpTaskCreated"]
    store = await open_event_store(gw.runtime.settings.store_url)
    try:
        tasks = stored_task_log(store, gw.runtime.sealer)
        _, events = await tasks.load(created["tenant"], created["subject"], task_id)
    finally:
        await store.close()
    return json.dumps([event.result for event in events if isinstance(event, McpTaskCompleted)])


async def test_an_expired_task_is_purged_once_and_its_result_is_unreadable_even_with_the_kek(
    gw: RunningGateway,
) -> None:
    assert gw.runtime.sealer is not None
    alice = Caller(gw, "alice")
    marker = f"marker-{uuid.uuid4().hex}"
    created = await alice.call("echo", {"text": marker})
    assert marker in json.dumps((await alice.settled(created["taskId"]))["result"])
    assert marker in await _result_with_the_keys(gw, created["taskId"])
    async with asyncio.timeout(20):
        while "McpTaskPurged" not in [kind for kind, _ in await _events(gw, created["taskId"])]:
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a few more sweeps: the purge stays recorded once
    kinds = [kind for kind, _ in await _events(gw, created["taskId"])]
    assert kinds == ["McpTaskCreated", "McpTaskCompleted", "McpTaskPurged"]
    assert marker not in await _result_with_the_keys(gw, created["taskId"])
    assert (await alice.task("tasks/get", created["taskId"]))["error"]["code"] == -32602
