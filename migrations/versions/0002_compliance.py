"""Compliance: the subject_keys table, audit columns and the hash chain on events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Existing rows get their audit columns and chain hashes computed here, in position order, with
a frozen copy of the chain's canonical form (mcp_ledger/eventstore/chain.py must stay equal).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True)
_GENESIS = "0" * 64
_BATCH = 1000
_INDEXES = {
    "ix_events_tenant_subject": ["tenant", "subject"],
    "ix_events_correlation_id": ["correlation_id"],
    "ix_events_tenant_tool": ["tenant", "tool_name"],
    "ix_events_recorded_at": ["recorded_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for name in ("tenant", "subject", "correlation_id", "tool_name", "chain_hash"):
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
    for name, columns in _INDEXES.items():
        op.create_index(name, "events", columns)
    op.create_table(
        "subject_keys",
        sa.Column("key_id", sa.Text(), primary_key=True),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("kek_id", sa.Text(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("destroyed_at", _TIMESTAMP, nullable=True),
    )
    op.create_index("ix_subject_keys_subject", "subject_keys", ["tenant", "subject"])
    op.create_index(
        "uq_subject_keys_active",
        "subject_keys",
        ["tenant", "subject"],
        unique=True,
        postgresql_where=sa.text("destroyed_at IS NULL"),
        sqlite_where=sa.text("destroyed_at IS NULL"),
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("uq_subject_keys_active", table_name="subject_keys")
    op.drop_index("ix_subject_keys_subject", table_name="subject_keys")
    op.drop_table("subject_keys")
    for name in _INDEXES:
        op.drop_index(name, table_name="events")
    with op.batch_alter_table("events") as batch:
        for name in ("chain_hash", "tool_name", "correlation_id", "subject", "tenant"):
            batch.drop_column(name)


def _backfill(connection: sa.Connection) -> None:
    rows = sa.table(
        "events",
        *(sa.column(name) for name in ("position", "stream_id", "version", "event_type", "schema_version")),
        sa.column("data", sa.JSON()),
        sa.column("metadata", sa.JSON()),
        sa.column("recorded_at", _TIMESTAMP),
        *(sa.column(name) for name in ("command_id", "tenant", "subject", "correlation_id", "tool_name")),
        sa.column("chain_hash"),
    )
    previous, after = _GENESIS, 0
    while True:
        batch = connection.execute(
            sa.select(rows).where(rows.c.position > after).order_by(rows.c.position).limit(_BATCH)
        ).all()
        if not batch:
            return
        for row in batch:
            values = row._mapping
            previous = _link(previous, values)
            meta, data = _document(values["metadata"]), _document(values["data"])
            tool = data.get("tool_name")
            connection.execute(
                rows.update()
                .where(rows.c.position == values["position"])
                .values(
                    tenant=meta.get("tenant"),
                    subject=meta.get("subject"),
                    correlation_id=meta.get("correlation_id"),
                    tool_name=tool if isinstance(tool, str) else None,
                    chain_hash=previous,
                )
            )
        after = batch[-1]._mapping["position"]


def _document(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded) if isinstance(loaded, dict) else {}


def _link(previous: str, values: Any) -> str:
    stamp = values["recorded_at"]
    if isinstance(stamp, str):
        stamp = datetime.fromisoformat(stamp)
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    canonical = [
        values["stream_id"],
        values["version"],
        values["event_type"],
        values["schema_version"],
        _document(values["data"]),
        _document(values["metadata"]),
        stamp.isoformat(),
        values["command_id"],
    ]
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(previous.encode() + body.encode()).hexdigest()
