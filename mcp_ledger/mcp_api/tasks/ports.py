"""The port the task service reads and writes task streams through; wiring fills it with the
event-store adapter (consumers/tasks/log.py), so the API never imports the store itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.tasks.state import TaskConflictError as TaskConflictError


class TaskLog(Protocol):
    """Task streams (domain/streams.task_stream) and the outcome of the command a task runs."""

    async def load(self, tenant: str, subject: str, task_id: str) -> tuple[int, list[DomainEvent]]:
        """The stream's version and its events (opened), (0, []) for no such stream."""
        ...

    async def append(
        self,
        tenant: str,
        subject: str,
        task_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        *,
        command_id: str,
    ) -> None:
        """Append events sealed for the subject.

        Raises:
            TaskConflictError: the stream is not at expected_version.
        """
        ...

    async def outcome(self, tenant: str, subject: str, command_id: str) -> dict[str, Any] | None:
        """The terminal event (wire form: event_type, data opened) the command recorded for
        this tenant and subject, None while it has none."""
        ...


class TaskIndex(Protocol):
    """Which tasks a subject created (tasks/list of 2025-11-25), read from the task streams'
    own McpTaskCreated events: no second store."""

    async def created(self, tenant: str, subject: str, after: int, limit: int) -> list[tuple[int, str]]:
        """(global position, task id) of the subject's task creations after `after`, oldest
        first, at most `limit`."""
        ...


class InputReplies(Protocol):
    """Where tasks/update sends the owner's answers: the reply topic the worker holding the
    call hears (mcp_api/backchannel/replies.py), headed by the owner's tenant and subject."""

    async def answer(self, tenant: str, subject: str, payload: Mapping[str, Any]) -> bool:
        """Relay one JSON-RPC response (`id` the request's key, `result` the answer).

        Raises:
            BusError: the bus refused it.
        """
        ...
