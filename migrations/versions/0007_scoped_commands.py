"""The commands idempotency record is keyed by tenant, subject and command id.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-15

Before, the key was the bare command id, so a command id derived from content (a plan's
task) matched another tenant's record and returned its events. Existing rows keep working:
each takes the tenant and subject of the first event it recorded (the issuer, `requested_by`,
where an event names someone else on an admin's behalf); a row that recorded no event takes
the tenant from its stream id and an empty subject. The table is rebuilt rather than
altered, because SQLite cannot change a primary key in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the store's types: a migration must not change when the code does.
_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)
_MOVED = ("command_id", "stream_id", "first_position", "last_position", "recorded_at")

_events = sa.table(
    "events",
    sa.column("position", _POSITION),
    sa.column("metadata", _DOCUMENT),
    sa.column("tenant", sa.Text()),
    sa.column("subject", sa.Text()),
)
_old = sa.table(
    "commands",
    sa.column("command_id", sa.Text()),
    sa.column("stream_id", sa.Text()),
    sa.column("first_position", _POSITION),
    sa.column("last_position", _POSITION),
    sa.column("recorded_at", _TIMESTAMP),
)


def _commands_table(name: str, *, scoped: bool) -> sa.Table:
    key = ["tenant", "subject", "command_id"] if scoped else ["command_id"]
    columns = [sa.Column(column, sa.Text(), nullable=False) for column in ("tenant", "subject") if scoped]
    return sa.Table(
        name,
        sa.MetaData(),
        *columns,
        sa.Column("command_id", sa.Text(), nullable=False),
        sa.Column("stream_id", sa.Text(), nullable=False),
        sa.Column("first_position", _POSITION, nullable=True),
        sa.Column("last_position", _POSITION, nullable=True),
        sa.Column("recorded_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint(*key, name="pk_commands" if scoped else None),
    )


def _tenant_of_stream(stream_id: sa.ColumnElement[str], dialect: str) -> sa.ColumnElement[str]:
    """`T` of a stream id `tenant:T:…`; null for any other shape."""
    if dialect == "postgresql":
        found: sa.ColumnElement[str] = sa.func.nullif(sa.func.split_part(stream_id, ":", 2), "")
    else:
        rest = sa.func.substr(stream_id, 8)
        found = sa.func.nullif(sa.func.substr(rest, 1, sa.func.instr(rest, ":") - 1), "")
    return sa.case((stream_id.like("tenant:%"), found), else_=None)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    scoped = _commands_table("commands_scoped", scoped=True)
    scoped.create(op.get_bind())
    issuer = sa.func.coalesce(_events.c.metadata["requested_by"].as_string(), _events.c.subject, "")
    tenant = sa.func.coalesce(_events.c.tenant, _tenant_of_stream(_old.c.stream_id, dialect), "")
    rows = sa.select(tenant, issuer, *(_old.c[name] for name in _MOVED)).select_from(
        _old.outerjoin(_events, _events.c.position == _old.c.first_position)
    )
    op.execute(sa.insert(scoped).from_select(["tenant", "subject", *_MOVED], rows))
    op.drop_table("commands")
    op.rename_table("commands_scoped", "commands")


def downgrade() -> None:
    # Lossy where two issuers recorded the same id: the earliest record of each id is kept.
    bind = op.get_bind()
    kept: dict[str, dict[str, object]] = {}
    for row in bind.execute(sa.select(*(_old.c[name] for name in _MOVED)).order_by(_old.c.recorded_at)):
        kept.setdefault(row.command_id, dict(row._mapping))
    bare = _commands_table("commands_bare", scoped=False)
    bare.create(bind)
    if kept:
        bind.execute(sa.insert(bare), list(kept.values()))
    op.drop_table("commands")
    op.rename_table("commands_bare", "commands")
