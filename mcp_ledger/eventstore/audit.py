"""SqlAuditLog: audit queries over the events table and verification of its hash chain.

Owns the queries on the audit columns (tenant, subject, tool, correlation id, time range; see
migration 0002) and walking the chain in global order (for one tenant, reporting only that
tenant's events). Does not open sealed fields: auditors
see who did what and when, not the personal content (export does that for the subject).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mcp_ledger.eventstore.chain import GENESIS, canonical_row, link
from mcp_ledger.eventstore.ports import AuditQuery, ChainReport, StoredEvent
from mcp_ledger.eventstore.tables import EVENT_COLUMNS, events

_BATCH = 2000


class SqlAuditLog:
    """The AuditLog port on the event store's database."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    async def query(self, query: AuditQuery) -> list[StoredEvent]:
        statement = select(*EVENT_COLUMNS).where(events.c.position > query.after_position)
        for column, value in (
            (events.c.tenant, query.tenant),
            (events.c.subject, query.subject),
            (events.c.tool_name, query.tool_name),
            (events.c.correlation_id, query.correlation_id),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if query.event_types is not None:
            statement = statement.where(events.c.event_type.in_(query.event_types))
        if query.since is not None:
            statement = statement.where(events.c.recorded_at >= query.since)
        if query.until is not None:
            statement = statement.where(events.c.recorded_at <= query.until)
        statement = statement.order_by(events.c.position).limit(query.limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [StoredEvent(**row._mapping) for row in rows]

    async def verify_chain(self, tenant: str | None = None) -> ChainReport:
        # The chain links every row to the one before it, whoever's it is: it is always
        # walked whole, and only the figures reported are the tenant's.
        previous, after, checked = GENESIS, 0, 0
        columns = (*EVENT_COLUMNS, events.c.command_id, events.c.chain_hash, events.c.tenant)
        statement = select(*columns).order_by(events.c.position)
        async with self._engine.connect() as conn:
            while True:
                rows = (await conn.execute(statement.where(events.c.position > after).limit(_BATCH))).all()
                if not rows:
                    return ChainReport(checked)
                for row in rows:
                    values = row._mapping
                    expected = link(previous, _canonical(values))
                    if values["chain_hash"] != expected:
                        reason = "hash missing" if values["chain_hash"] is None else "hash mismatch"
                        if tenant is None or values["tenant"] == tenant:
                            return ChainReport(checked, values["position"], reason)
                        return await _unverified_from(conn, tenant, values["position"], checked)
                    previous = expected
                    checked += tenant is None or values["tenant"] == tenant
                after = rows[-1]._mapping["position"]

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


async def _unverified_from(conn: AsyncConnection, tenant: str, broken: int, checked: int) -> ChainReport:
    """The tenant's report when another tenant's row breaks the chain: its own events after
    the break cannot be verified (named by the first of them); the other row is not named."""
    first = select(func.min(events.c.position)).where(events.c.tenant == tenant, events.c.position > broken)
    position = (await conn.execute(first)).scalar()
    if position is None:
        return ChainReport(checked)  # every event of the tenant lies before the break: verified
    return ChainReport(checked, int(position), "unverifiable: the chain is broken before this event")


def _canonical(values: Any) -> bytes:
    return canonical_row(
        values["stream_id"],
        values["version"],
        values["event_type"],
        values["schema_version"],
        values["data"],
        values["metadata"],
        values["recorded_at"],
        values["command_id"],
    )
