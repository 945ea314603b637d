"""Stopping a task's tool on the worker that runs it.

tasks/cancel appends `McpTaskCancelled` to the task's stream (any API replica). The worker
running the task's CallTool (the command names its task) reads that stream while the tool
runs, every `poll_s`; when the cancellation is there it cancels the tool's asyncio task (an
upstream tool's SDK call is cancelled with it) and the command is recorded as `ToolFailed`
with code `cancelled`, so a redelivery finds it decided and never runs the tool again. The
stream read is the caller's own (tenant and subject of the command), and only events whose
metadata names that subject count. It records nothing in the task's stream: the API's one
`McpTaskCancelled` is the cancellation; this is the command's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TypeVar

from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.streams import task_stream
from mcp_ledger.eventstore.ports import EventStore, EventStoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
CANCELLED = "McpTaskCancelled"


class ToolStoppedError(Exception):
    """The tool was stopped because its task was cancelled."""


class TaskCancellations:
    """Runs a task's tool so that its task's cancellation stops it."""

    def __init__(self, store: EventStore, *, poll_s: float = 0.25) -> None:
        self._store = store
        self._poll_s = poll_s

    async def cancelled(self, command: CallTool) -> bool:
        """Whether the command's task has been cancelled by its owner."""
        if command.task_id is None:
            return False
        stream = task_stream(command.tenant, command.subject, command.task_id)
        events = await self._store.read_stream(stream)
        return any(
            event.event_type == CANCELLED and event.metadata.get("subject") == command.subject
            for event in events
        )

    async def _watch(self, command: CallTool, stop: asyncio.Event) -> bool:
        """True once the task is cancelled, False once `stop` is set: it is stopped, never
        cancelled in the middle of a store read (that would leave its connection half used)."""
        while not stop.is_set():
            try:
                if await self.cancelled(command):
                    return True
            except EventStoreError as error:  # the store blinked: keep the tool running, look again
                log.warning("task %s: cancellation check failed: %s", command.task_id, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._poll_s)
        return False

    async def run(self, command: CallTool, work: Awaitable[T]) -> T:
        """Await `work` (the tool) unless the command's task is cancelled first.

        Raises:
            ToolStoppedError: the task was cancelled; the tool's task has been cancelled and awaited.
        """
        if command.task_id is None:
            return await work
        if await self.cancelled(command):  # cancelled before this worker got the command
            if asyncio.iscoroutine(work):
                work.close()
            raise ToolStoppedError(command.task_id)
        tool = asyncio.ensure_future(work)
        stop = asyncio.Event()
        watch = asyncio.create_task(self._watch(command, stop))
        try:
            await asyncio.wait({tool, watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # the worker itself is stopping: the tool stops with it
            tool.cancel()
            stop.set()
            raise
        if not tool.done() and watch.exception() is None and watch.result():
            tool.cancel()
            await asyncio.gather(tool, return_exceptions=True)
            raise ToolStoppedError(command.task_id)
        stop.set()  # the tool ended first (it keeps its outcome), or the watch broke: let it run
        await asyncio.gather(watch, return_exceptions=True)
        return await tool
