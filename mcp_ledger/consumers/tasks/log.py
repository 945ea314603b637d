"""Task streams in the event store, sealed per subject like every other stream.

The outcome of a task's command is found by its idempotency key (tenant, subject, command
id): another subject's command of the same id is another command, so nothing of theirs can
complete this task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.events import DomainEvent, is_terminal, to_record
from mcp_ledger.domain.streams import task_stream
from mcp_ledger.domain.tasks.state import TaskConflictError
from mcp_ledger.eventstore.ports import CommandKey, ConcurrencyError, EventStore, NewEvent


class StoredTaskLog:
    """`TaskLog` over an `EventStore` and the sealing mapper."""

    def __init__(self, store: EventStore, mapper: EventMapper) -> None:
        self._store = store
        self._mapper = mapper

    async def load(self, tenant: str, subject: str, task_id: str) -> tuple[int, list[DomainEvent]]:
        stored = await self._store.read_stream(task_stream(tenant, subject, task_id))
        owned = [event for event in stored if event.metadata.get("subject") == subject]
        version = stored[-1].version if stored else 0
        return version, [await self._mapper.to_domain(event) for event in owned]

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
