"""The rows an append inserts: the event, its audit columns and its link in the hash chain.

Owns how audit columns are taken from an event's metadata and data (tenant, subject,
correlation id, tool name), the chaining of one append's rows and the stored events they
become once the database numbered them. Does not talk to the database (sql.py does).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mcp_ledger.eventstore.chain import canonical_row, link
from mcp_ledger.eventstore.ports import NewEvent, StoredEvent


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def audit_rows(
    tip: str,
    stream_id: str,
    expected_version: int,
    new: Sequence[NewEvent],
    command_id: str | None,
    recorded_at: datetime,
) -> list[dict[str, Any]]:
    """Insertable rows for `new`, chained after the row whose hash is `tip`."""
    rows: list[dict[str, Any]] = []
    previous = tip
    for offset, item in enumerate(new, start=1):
        version = expected_version + offset
        canonical = canonical_row(
            stream_id,
            version,
            item.event_type,
            item.schema_version,
            item.data,
            item.metadata,
            recorded_at,
            command_id,
        )
        previous = link(previous, canonical)
        rows.append(
            {
                "stream_id": stream_id,
                "version": version,
                "event_type": item.event_type,
                "schema_version": item.schema_version,
                "data": item.data,
                "metadata": item.metadata,
                "recorded_at": recorded_at,
                "command_id": command_id,
                "tenant": _text(item.metadata.get("tenant")),
                "subject": _text(item.metadata.get("subject")),
                "correlation_id": _text(item.metadata.get("correlation_id")),
                "tool_name": _text(item.data.get("tool_name")),
                "chain_hash": previous,
            }
        )
    return rows


def stored_events(
    stream_id: str,
    rows: Sequence[dict[str, Any]],
    new: Sequence[NewEvent],
    recorded_at: datetime,
    position_of: dict[int, int],
) -> tuple[StoredEvent, ...]:
    """The appended events as stored, given the position the database gave each version."""
    return tuple(
        StoredEvent(
            position=position_of[row["version"]],
            stream_id=stream_id,
            version=row["version"],
            event_type=item.event_type,
            schema_version=item.schema_version,
            data=item.data,
            metadata=item.metadata,
            recorded_at=recorded_at,
        )
        for row, item in zip(rows, new, strict=True)
    )
