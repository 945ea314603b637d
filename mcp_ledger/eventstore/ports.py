"""The event store port: append-only streams with a global order and a transactional outbox.

Owns the shapes that cross the port (NewEvent, StoredEvent, AppendResult) and its errors.
Does not know what events mean: payloads are plain JSON-ready dicts produced by the domain
mapper (mcp_ledger.domain.events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

JSON = dict[str, Any]


class EventStoreError(Exception):
    """Base class of the event store's errors."""


class ConcurrencyError(EventStoreError):
    """The stream moved past the expected version: another writer appended first."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id!r} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended; the store assigns version and position."""

    event_type: str
    data: JSON
    schema_version: int = 1
    metadata: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as recorded: `version` counts within its stream from 1, `position` is global."""

    position: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    data: JSON
    metadata: JSON
    recorded_at: datetime

    def to_json(self) -> JSON:
        """The wire form used on the bus (ledger.events)."""
        return {
            "position": self.position,
            "stream_id": self.stream_id,
            "version": self.version,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: JSON) -> StoredEvent:
        """Parse the wire form.

        Raises:
            KeyError, ValueError: the payload is not a stored event.
        """
        return cls(
            position=int(raw["position"]),
            stream_id=str(raw["stream_id"]),
            version=int(raw["version"]),
            event_type=str(raw["event_type"]),
            schema_version=int(raw["schema_version"]),
            data=dict(raw["data"]),
            metadata=dict(raw["metadata"]),
            recorded_at=datetime.fromisoformat(raw["recorded_at"]),
        )


@dataclass(frozen=True, slots=True)
class CommandKey:
    """A command's idempotency key: the tenant and subject it was issued for, and its id.

    The same command id under another tenant or subject is another command: a redelivery
    check never finds, and never returns, what someone else's command recorded.
    """

    tenant: str
    subject: str
    command_id: str


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append recorded. `duplicate` is true when the command (its key) was already
    recorded: then nothing was appended and `events` are the ones the first append recorded."""

    events: tuple[StoredEvent, ...]
    duplicate: bool = False


class EventStore(Protocol):
    """Append-only event streams with optimistic concurrency, a global order and an outbox."""

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        command: CommandKey | None = None,
    ) -> AppendResult:
        """Append events atomically, with outbox rows for each, in one transaction.

        expected_version is the stream's current version (0 for a new stream). A command key
        already recorded makes this a no-op that returns the first append's events.

        Raises:
            ConcurrencyError: the stream is not at expected_version.
        """
        ...

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
        """Events of one stream in version order, after `after_version`."""
        ...

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events of all streams in global order, after `after_position`, at most `limit`."""
        ...

    async def events_for_command(self, command: CommandKey) -> list[StoredEvent]:
        """The events appended for a command key, empty if it was never recorded."""
        ...

    async def pending_outbox(self, limit: int = 500) -> list[StoredEvent]:
        """Stored events not yet marked published, in global order."""
        ...

    async def mark_published(self, positions: Sequence[int]) -> None:
        """Remove these positions from the outbox (idempotent)."""
        ...

    async def last_position(self) -> int:
        """The highest global position recorded, 0 when empty."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of an audit query; None means any. Times are inclusive bounds on recorded_at."""

    tenant: str | None = None
    subject: str | None = None
    tool_name: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_types: tuple[str, ...] | None = None
    after_position: int = 0
    limit: int = 1000


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking the audit hash chain: `first_broken` is None when intact."""

    checked: int
    first_broken: int | None = None
    reason: str = ""


class AuditLog(Protocol):
    """The event log as auditors see it: queries by who, what, when, and tamper evidence."""

    async def query(self, query: AuditQuery) -> list[StoredEvent]:
        """Matching events in global order (after `after_position`, at most `limit`)."""
        ...

    async def verify_chain(self, tenant: str | None = None) -> ChainReport:
        """Recompute the hash chain over the global order; report the first row that breaks it.

        With `tenant`, every figure is that tenant's: `checked` counts its verified events and
        `first_broken` is its own broken event or, when another tenant's row breaks the chain,
        its first event after the break (which cannot be verified); another tenant's position
        is never reported."""
        ...
