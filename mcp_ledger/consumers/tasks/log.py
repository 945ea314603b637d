"""Task streams in the event store, sealed per subject like every other stream.

The outcome of a task's command is found by its idempotency key (tenant, subject, command
id): another subject's command of the same id is another command, so nothing of theirs can
complete this task. With content keys (consumers/tasks/content.py), a task's personal fields
are also sealed with the task's own key, which the ttl purge destroys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from mcp_ledger.consumers.mapping import EventMapper, to_domain
from mcp_ledger.consumers.tasks.content import TaskContentKeys
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.events import DomainEvent, is_terminal, to_record
from mcp_ledger.domain.streams import parse_task_stream, subject_tag, task_stream
from mcp_ledger.domain.tasks.events import McpTaskPurged
from mcp_ledger.domain.tasks.state import TaskConflictError
from mcp_ledger.eventstore.ports import (
    AuditLog,
    AuditQuery,
    CommandKey,
    ConcurrencyError,
    EventStore,
    NewEvent,
)


def stored_task_log(store: EventStore, sealer: RecordSealer | None) -> StoredTaskLog:
    """The task log every process uses: sealed per subject and, with keys, per task."""
    content = None if sealer is None else TaskContentKeys(sealer.keys)
    return StoredTaskLog(store, EventMapper(sealer), content)


class StoredTaskLog:
    """`TaskLog` over an `EventStore` and the sealing mapper."""

    def __init__(
        self, store: EventStore, mapper: EventMapper, content: TaskContentKeys | None = None
    ) -> None:
        self._store = store
        self._mapper = mapper
        self._content = content

    async def load(self, tenant: str, subject: str, task_id: str) -> tuple[int, list[DomainEvent]]:
        stored = await self._store.read_stream(task_stream(tenant, subject, task_id))
        owned = [event for event in stored if event.metadata.get("subject") == subject]
        version = stored[-1].version if stored else 0
        events = []
        for event in owned:
            opened = await self._mapper.open(event)
            if self._content is not None:
                data = await self._content.open(tenant, subject, task_id, event.event_type, opened.data)
                opened = replace(opened, data=data)
            events.append(to_domain(opened))
        return version, events

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
        metadata = {
            "command_id": command_id,
            "correlation_id": command_id,
            "tenant": tenant,
            "subject": subject,
        }
        records = []
        for event in events:
            event_type, version, data = to_record(event)
            if self._content is not None:
                data = await self._content.seal(tenant, subject, task_id, event_type, data)
            records.append(
                NewEvent(event_type=event_type, data=data, schema_version=version, metadata=metadata)
            )
        stream_id = task_stream(tenant, subject, task_id)
        try:
            await self._store.append(
                stream_id, expected_version, await self._mapper.sealed(records, stream_id)
            )
        except ConcurrencyError as error:
            raise TaskConflictError(str(error)) from error

    async def outcome(self, tenant: str, subject: str, command_id: str) -> dict[str, Any] | None:
        for event in await self._store.events_for_command(CommandKey(tenant, subject, command_id)):
            if is_terminal(event.event_type):
                opened = await self._mapper.open(event)
                return {"event_type": opened.event_type, "data": opened.data, "metadata": opened.metadata}
        return None

    async def purge(self, tenant: str, subject: str, task_id: str) -> Literal["purged", "done", "contended"]:
        """Destroy the task's own key, then record McpTaskPurged once: "done" if the stream is
        already purged (or has no task), "contended" if another writer moved it meanwhile
        (the key is gone all the same; the next sweep records the purge)."""
        stream_id = task_stream(tenant, subject, task_id)
        stored = await self._store.read_stream(stream_id)
        if not stored or any(event.event_type == "McpTaskPurged" for event in stored):
            return "done"
        if self._content is not None:
            await self._content.destroy(tenant, subject, task_id)
        try:
            await self.append(
                tenant,
                subject,
                task_id,
                stored[-1].version,
                [McpTaskPurged(purged_at=time.time())],
                command_id=str(stored[0].metadata.get("command_id", task_id)),
            )
        except TaskConflictError:
            return "contended"
        return "purged"


class AuditedTaskIndex:
    """`TaskIndex` over the audit columns of the events table: a subject's McpTaskCreated
    events, each named by its own task stream (tenant and owner tag checked again)."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def created(self, tenant: str, subject: str, after: int, limit: int) -> list[tuple[int, str]]:
        query = AuditQuery(
            tenant=tenant, subject=subject, event_types=("McpTaskCreated",), after_position=after, limit=limit
        )
        found = []
        for event in await self._audit.query(query):
            located = parse_task_stream(event.stream_id)
            if located is not None and located[:2] == (tenant, subject_tag(subject)):
                found.append((event.position, located[2]))
        return found
