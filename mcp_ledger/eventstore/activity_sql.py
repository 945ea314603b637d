"""SubjectActivitySource on the event store's database: the events' audit columns and the
subject_keys table (PostgreSQL or SQLite)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_ledger.domain.streams import TASK_KEY_PREFIX
from mcp_ledger.eventstore.activity import SubjectActivity
from mcp_ledger.eventstore.tables import events, subject_keys


def _live_subject_keys() -> ColumnElement[bool]:
    """Live keys of subjects: an MCP task's own key (consumers/tasks/content.py) is no subject."""
    return and_(subject_keys.c.destroyed_at.is_(None), subject_keys.c.subject.not_like(f"{TASK_KEY_PREFIX}%"))


class SqlSubjectActivity:
    """Reads subjects' last activity (PostgreSQL or SQLite)."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    async def tenants(self) -> list[str]:
        """Tenants with at least one subject holding a live key."""
        query = select(subject_keys.c.tenant).where(_live_subject_keys()).distinct()
        async with self._engine.connect() as conn:
            return sorted(str(tenant) for tenant in (await conn.execute(query)).scalars())

    async def subjects(self, tenant: str) -> list[SubjectActivity]:
        """Every subject of the tenant holding a live key, with their last activity."""
        keys = (
            select(subject_keys.c.subject, func.max(subject_keys.c.created_at))
            .where(subject_keys.c.tenant == tenant, _live_subject_keys())
            .group_by(subject_keys.c.subject)
        )
        latest = (
            select(events.c.subject, func.max(events.c.recorded_at))
            .where(events.c.tenant == tenant, events.c.subject.is_not(None))
            .group_by(events.c.subject)
        )
        async with self._engine.connect() as conn:
            created = {str(subject): at for subject, at in (await conn.execute(keys)).all()}
            recorded = {str(subject): at for subject, at in (await conn.execute(latest)).all()}
        return [
            SubjectActivity(tenant, subject, max(at, recorded.get(subject, at)))
            for subject, at in sorted(created.items())
        ]

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()
