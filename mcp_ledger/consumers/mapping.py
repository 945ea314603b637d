"""Mapping between domain events and event-store records, with the command's metadata.

This is where personal fields will be encrypted (crypto/) before they are stored; today
every field is stored as the domain serialises it.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_ledger.domain.commands import Command
from mcp_ledger.domain.events import DomainEvent, from_record, to_record
from mcp_ledger.eventstore.ports import NewEvent, StoredEvent


def to_new_events(command: Command, events: Sequence[DomainEvent]) -> list[NewEvent]:
    """Records for the store, each carrying who caused it and why."""
    metadata = {
        "command_id": command.command_id,
        "correlation_id": command.correlation_id or command.command_id,
        "tenant": command.tenant,
        "subject": command.subject,
    }
    records = []
    for event in events:
        event_type, version, data = to_record(event)
        records.append(NewEvent(event_type=event_type, data=data, schema_version=version, metadata=metadata))
    return records


def to_domain(stored: StoredEvent) -> DomainEvent:
    """The domain event a record holds.

    Raises:
        UnknownEventError: the record's type or version is unknown.
    """
    return from_record(stored.event_type, stored.schema_version, stored.data)
