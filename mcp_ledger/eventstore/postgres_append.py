"""A PostgreSQL append's writes in one statement, built once.

After the lock and the version/command/chain-tip check (sql.py), an append wrote the events, the
command's record and the outbox rows in three statements, three round trips under the global
append lock. Here they are one INSERT with data-modifying CTEs over `unnest()` of one array per
column: the statement's text never changes with the number of events, so SQLAlchemy compiles it
once (a `VALUES` list per call compiled anew for every append: tried in round two, reverted)
and asyncpg prepares it once per connection. Positions are drawn in version order (`ORDER BY`
in the INSERT's SELECT), as the ordered executemany did; the command's record takes the first
and last of them (null for a command that appended nothing: aggregates over no rows).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mcp_ledger.eventstore.ports import CommandKey, NewEvent, StoredEvent
from mcp_ledger.eventstore.rows import stored_events

_ARRAYS = (
    ("version", "integer"),
    ("event_type", "text"),
    ("schema_version", "integer"),
    ("data", "text"),
    ("metadata", "text"),
    ("tenant", "text"),
    ("subject", "text"),
    ("correlation_id", "text"),
    ("tool_name", "text"),
    ("chain_hash", "text"),
)
_UNNEST = ", ".join(f"CAST(:{name}s AS {kind}[])" for name, kind in _ARRAYS)
_NAMES = ", ".join(name for name, _ in _ARRAYS)
APPEND_WRITES = text(
    f"""
WITH new AS (
    INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,
                        recorded_at, command_id, tenant, subject, correlation_id, tool_name, chain_hash)
    SELECT CAST(:stream_id AS text), e.version, e.event_type, e.schema_version,
           CAST(e.data AS jsonb), CAST(e.metadata AS jsonb), CAST(:recorded_at AS timestamptz),
           CAST(:command_id AS text), e.tenant, e.subject, e.correlation_id, e.tool_name, e.chain_hash
    FROM unnest({_UNNEST}) AS e({_NAMES})
    ORDER BY e.version
    RETURNING version, position
), outboxed AS (
    INSERT INTO outbox (position) SELECT position FROM new
), recorded AS (
    INSERT INTO commands (tenant, subject, command_id, stream_id, first_position, last_position, recorded_at)
    SELECT CAST(:command_tenant AS text), CAST(:command_subject AS text), CAST(:command_id AS text),
           CAST(:stream_id AS text), min(position), max(position), CAST(:recorded_at AS timestamptz)
    FROM new
    HAVING CAST(:record AS boolean)
)
SELECT version, position FROM new
"""
)


def _params(
    stream_id: str, rows: list[dict[str, Any]], recorded_at: datetime, command: CommandKey | None
) -> dict[str, Any]:
    columns: dict[str, Any] = {f"{name}s": [row[name] for row in rows] for name, _ in _ARRAYS}
    for name in ("data", "metadata"):  # as the engine's JSON type does, then cast to jsonb
        columns[f"{name}s"] = [json.dumps(value) for value in columns[f"{name}s"]]
    return {
        **columns,
        "stream_id": stream_id,
        "recorded_at": recorded_at,
        "command_id": command.command_id if command is not None else None,
        "command_tenant": command.tenant if command is not None else None,
        "command_subject": command.subject if command is not None else None,
        "record": command is not None,
    }


async def write_append(
    conn: AsyncConnection,
    stream_id: str,
    rows: list[dict[str, Any]],
    new: Sequence[NewEvent],
    recorded_at: datetime,
    command: CommandKey | None,
) -> tuple[StoredEvent, ...]:
    """Insert the events, their outbox rows and the command's record; the stored events."""
    result = await conn.execute(APPEND_WRITES, _params(stream_id, rows, recorded_at, command))
    position_of = {version: position for version, position in result.all()}
    return stored_events(stream_id, rows, new, recorded_at, position_of)
