"""The ttl purge of MCP tasks: a bounded periodic sweep in every worker.

Each sweep reads the next `batch` events of the store after its checkpoint (tasks' creation
events name tenant, subject, task id, ttl and creation time in the clear), keeps the tasks
not yet due in a heap, and purges at most `batch` tasks whose ttl ran out: their own data key
destroyed and `McpTaskPurged` recorded (StoredTaskLog.purge). Several workers sweep the same
store; the stream's optimistic concurrency records each purge once, and destroying a key
twice is harmless. The checkpoint lives in memory: a restarted worker reads the store again
from the start, `batch` events a sweep, so the work of one sweep stays bounded. Owns the
schedule only; what purging means is the task log's.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from typing import Any

from mcp_ledger.consumers.tasks.log import StoredTaskLog
from mcp_ledger.crypto.ports import KeyStoreError
from mcp_ledger.eventstore.ports import EventStore, EventStoreError

log = logging.getLogger(__name__)

Due = tuple[float, str, str, str]
"""(purge time, tenant, subject, task id)."""


def _due(data: dict[str, Any], metadata: dict[str, Any]) -> Due | None:
    ttl, created = data.get("ttl_ms"), data.get("created_at")
    tenant, subject, task_id = metadata.get("tenant"), metadata.get("subject"), data.get("task_id")
    if not isinstance(ttl, int) or not isinstance(created, int | float):
        return None  # no ttl: kept until the subject's erasure
    if not (isinstance(tenant, str) and isinstance(subject, str) and isinstance(task_id, str)):
        return None
    return created + ttl / 1000, tenant, subject, task_id


class TaskPurger:
    """Finds expired tasks in the store and purges them, a bounded amount per sweep."""

    def __init__(
        self,
        store: EventStore,
        tasks: StoredTaskLog,
        *,
        batch: int = 2000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tasks = tasks
        self._batch = batch
        self._clock = clock
        self._position = 0
        self._pending: list[Due] = []
        self._runner: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One sweep: read on, purge what is due. How many tasks this sweep purged."""
        for event in await self._store.read_all(after_position=self._position, limit=self._batch):
            self._position = event.position
            if event.event_type == "McpTaskCreated":
                due = _due(event.data, event.metadata)
                if due is not None:
                    heapq.heappush(self._pending, due)
        purged, now = 0, self._clock()
        for _ in range(self._batch):
            if not self._pending or self._pending[0][0] > now:
                break
            due = heapq.heappop(self._pending)
            outcome = await self._tasks.purge(*due[1:])
            if outcome == "contended":
                heapq.heappush(self._pending, due)  # again next sweep, once the writer is done
                break
            purged += outcome == "purged"
        return purged

    def start(self, interval_s: float) -> None:
        """Sweep every `interval_s` in the background until close()."""
        self._runner = asyncio.create_task(self._run(interval_s))

    async def _run(self, interval_s: float) -> None:
        while True:
            try:
                purged = await self.sweep()
                if purged:
                    log.info("purged %d expired MCP tasks", purged)
            except (EventStoreError, KeyStoreError) as error:  # a blink: the next sweep goes on
                log.warning("task purge sweep failed: %s", error)
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
