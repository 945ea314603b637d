"""Mapping between domain events and event-store records, with the command's metadata.

`EventMapper` seals every field the domain does not allowlist (domain/personal.py) with the
subject's data key before they are stored (so the events table, the outbox and ledger.events
hold ciphertext for them) and opens them on load; an erased subject's fields load as
placeholders. The plain functions below it do the mapping without any sealing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import Command
from mcp_ledger.domain.events import DomainEvent, from_record, to_record
from mcp_ledger.eventstore.ports import CommandKey, NewEvent, StoredEvent


def command_key(command: Command, command_id: str | None = None) -> CommandKey:
    """The idempotency key of a command (or of a record derived from it, named `command_id`):
    scoped to the command's tenant and subject, so nobody else's id can ever match it."""
    return CommandKey(command.tenant, command.subject, command_id or command.command_id)


def command_metadata(command: Command) -> dict[str, str]:
    """Who caused an event and why: stored beside every event a command appends."""
    return {
        "command_id": command.command_id,
        "correlation_id": command.correlation_id or command.command_id,
        "tenant": command.tenant,
        "subject": command.subject,
    }


def to_new_events(command: Command, events: Sequence[DomainEvent]) -> list[NewEvent]:
    """Records for the store, each carrying who caused it and why (nothing sealed)."""
    metadata = command_metadata(command)
    records = []
    for event in events:
        event_type, version, data = to_record(event)
        records.append(NewEvent(event_type=event_type, data=data, schema_version=version, metadata=metadata))
    return records


def to_domain(stored: StoredEvent) -> DomainEvent:
    """The domain event a record holds (already opened).

    Raises:
        UnknownEventError: the record's type or version is unknown.
    """
    return from_record(stored.event_type, stored.schema_version, stored.data)


class EventMapper:
    """The mapping with personal fields sealed; without a sealer it stores them as they are."""

    def __init__(self, sealer: RecordSealer | None = None) -> None:
        self._sealer = sealer

    async def to_new_events(
        self, command: Command, events: Sequence[DomainEvent], stream_id: str
    ) -> list[NewEvent]:
        """Records for `stream_id`, personal fields sealed for the command's subject."""
        return await self.sealed(to_new_events(command, events), stream_id)

    async def sealed(self, records: Sequence[NewEvent], stream_id: str) -> list[NewEvent]:
        """The records with their personal fields sealed for the subject in their metadata."""
        if self._sealer is None:
            return list(records)
        return [
            NewEvent(
                event_type=record.event_type,
                data=await self._sealer.seal_event(
                    record.event_type, record.data, record.metadata, stream_id
                ),
                schema_version=record.schema_version,
                metadata=record.metadata,
            )
            for record in records
        ]

    async def open(self, stored: StoredEvent) -> StoredEvent:
        """The stored event with its personal fields opened."""
        if self._sealer is None:
            return stored
        data = await self._sealer.open_event(
            stored.event_type, stored.data, stored.metadata, stored.stream_id
        )
        return replace(stored, data=data)

    async def to_domain(self, stored: StoredEvent) -> DomainEvent:
        """The domain event a stored (sealed) record holds.

        Raises:
            UnknownEventError: the record's type or version is unknown.
            DecryptionError: a sealed value was altered or moved.
        """
        return to_domain(await self.open(stored))
