"""The event store's schema as SQLAlchemy Core tables, shared by PostgreSQL and SQLite.

Owns the table definitions the store queries and the column types that differ per backend
(BIGINT positions that are the rowid on SQLite, JSONB on PostgreSQL, UTC timestamps).
Does not create anything: the Alembic migrations in migrations/versions do, with their own
frozen copy of this schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# INTEGER PRIMARY KEY is SQLite's rowid, the only autoincrementing integer key it has.
Position = BigInteger().with_variant(Integer(), "sqlite")
Document = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that always comes back timezone-aware.

    SQLite keeps no offset, so values are written as naive UTC and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("recorded_at must be timezone-aware")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("stream_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", Document, nullable=False),
    Column("metadata", Document, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("command_id", Text, nullable=True),
    # Audit columns (migration 0002): copied from metadata/data at append time so auditors can
    # query by them; chain_hash links each row to the one before it in the global order.
    Column("tenant", Text, nullable=True),
    Column("subject", Text, nullable=True),
    Column("correlation_id", Text, nullable=True),
    Column("tool_name", Text, nullable=True),
    Column("chain_hash", Text, nullable=True),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
    Index("ix_events_command_id", "command_id"),
    Index("ix_events_tenant_subject", "tenant", "subject"),
    Index("ix_events_correlation_id", "correlation_id"),
    Index("ix_events_tenant_tool", "tenant", "tool_name"),
    Index("ix_events_recorded_at", "recorded_at"),
    # AUTOINCREMENT: a position is never handed out twice, even after the newest row is gone.
    sqlite_autoincrement=True,
)

# The idempotency record, keyed by who issued the command (migration 0007): one tenant's or
# subject's command id never matches another's. Positions are null for a command that
# appended no events; the command's events are its stream's rows between them.
commands = Table(
    "commands",
    metadata,
    Column("tenant", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("command_id", Text, nullable=False),
    Column("stream_id", Text, nullable=False),
    Column("first_position", Position, nullable=True),
    Column("last_position", Position, nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("tenant", "subject", "command_id", name="pk_commands"),
)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "position",
        Position,
        ForeignKey("events.position", name="fk_outbox_position"),
        primary_key=True,
        autoincrement=False,
    ),
)

# Per-subject data keys, wrapped by a key-encryption key; apart from the events on purpose.
# Destroying a key nulls wrapped_key and stamps destroyed_at. At most one active key per subject.
subject_keys = Table(
    "subject_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("tenant", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("kek_id", Text, nullable=True),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("destroyed_at", UtcDateTime, nullable=True),
    Index("ix_subject_keys_subject", "tenant", "subject"),
    Index(
        "uq_subject_keys_active",
        "tenant",
        "subject",
        unique=True,
        postgresql_where=text("destroyed_at IS NULL"),
        sqlite_where=text("destroyed_at IS NULL"),
    ),
)


EVENT_COLUMNS = (
    events.c.position,
    events.c.stream_id,
    events.c.version,
    events.c.event_type,
    events.c.schema_version,
    events.c.data,
    events.c.metadata,
    events.c.recorded_at,
)
"""The columns a StoredEvent is made of, in its field order."""
