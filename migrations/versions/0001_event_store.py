"""The event store: events, the commands idempotency record and the outbox.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the store's types: a migration must not change when the code does.
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", _POSITION, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.Column("metadata", _DOCUMENT, nullable=False),
        sa.Column("recorded_at", _TIMESTAMP, nullable=False),
        sa.Column("command_id", sa.Text(), nullable=True),
        sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_command_id", "events", ["command_id"])
    op.create_table(
        "commands",
        sa.Column("command_id", sa.Text(), primary_key=True),
        sa.Column("stream_id", sa.Text(), nullable=False),
        sa.Column("first_position", _POSITION, nullable=True),
        sa.Column("last_position", _POSITION, nullable=True),
        sa.Column("recorded_at", _TIMESTAMP, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "position",
            _POSITION,
            sa.ForeignKey("events.position", name="fk_outbox_position"),
            primary_key=True,
            autoincrement=False,
        ),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("commands")
    op.drop_index("ix_events_command_id", table_name="events")
    op.drop_table("events")
