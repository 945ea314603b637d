"""One contract for the audit log: SQLite in unit tests, PostgreSQL in integration.

Tests name their tenants freshly; chain tests restore what they tamper with even when they
fail (and verify the whole chain, so an adapter's test class should give them a database of
their own), so one test's forgery never breaks another's chain.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.ports import AuditQuery, NewEvent, StoredEvent
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.eventstore.tables import events


def _event(tenant: str, subject: str, tool: str, correlation: str) -> NewEvent:
    metadata = {
        "tenant": tenant,
        "subject": subject,
        "correlation_id": correlation,
        "command_id": correlation,
    }
    return NewEvent(
        "ToolCalled", {"command_id": correlation, "tool_name": tool, "arguments": {}}, 1, metadata
    )


@asynccontextmanager
async def forged(engine: AsyncEngine, position: int, **changes: Any) -> AsyncIterator[None]:
    """The row at `position` with its data changed until the block ends, then restored."""
    async with engine.begin() as conn:
        original = (
            await conn.execute(select(events.c.data).where(events.c.position == position))
        ).scalar_one()
        forgery = {**original, **changes}
        await conn.execute(update(events).where(events.c.position == position).values(data=forgery))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(update(events).where(events.c.position == position).values(data=original))


@asynccontextmanager
async def deleted(engine: AsyncEngine, position: int) -> AsyncIterator[None]:
    """The row at `position` gone until the block ends, then put back as it was."""
    async with engine.begin() as conn:
        row = (await conn.execute(select(events).where(events.c.position == position))).one()
        await conn.execute(events.delete().where(events.c.position == position))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(events.insert().values(**row._mapping))


class AuditLogContract:
    """Subclasses provide `database_url`, migrated to head."""

    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def tenant(self) -> str:
        return f"a{uuid.uuid4().hex[:12]}"

    async def test_queries_filter_by_tenant_subject_tool_and_correlation(
        self, database_url: str, tenant: str
    ) -> None:
        store = await open_event_store(database_url)
        audit = SqlAuditLog(create_store_engine(database_url), owns_engine=True)
        try:
            await store.append(f"{tenant}-1", 0, [_event(tenant, "alice", "echo", "c1")])
            await store.append(f"{tenant}-2", 0, [_event(tenant, "alice", "note_set", "c2")])
            await store.append(f"{tenant}-3", 0, [_event(tenant, "bob", "echo", "c3")])
            await store.append(f"{tenant}-4", 0, [_event(f"{tenant}x", "alice", "echo", "c4")])

            def ids(found: list[StoredEvent]) -> list[str]:
                return [e.metadata["correlation_id"] for e in found]

            assert ids(await audit.query(AuditQuery(tenant=tenant))) == ["c1", "c2", "c3"]
            assert ids(await audit.query(AuditQuery(tenant=tenant, subject="alice"))) == ["c1", "c2"]
            assert ids(await audit.query(AuditQuery(tenant=tenant, tool_name="echo"))) == ["c1", "c3"]
            assert ids(await audit.query(AuditQuery(tenant=tenant, correlation_id="c2"))) == ["c2"]
            assert ids(await audit.query(AuditQuery(tenant=tenant, limit=1))) == ["c1"]
        finally:
            await audit.close()
            await store.close()

    async def test_queries_filter_by_time_range(self, database_url: str, tenant: str) -> None:
        store = await open_event_store(database_url)
        audit = SqlAuditLog(create_store_engine(database_url), owns_engine=True)
        try:
            recorded = (await store.append(f"{tenant}-1", 0, [_event(tenant, "alice", "echo", "c1")])).events
            at = recorded[0].recorded_at
            hour = timedelta(hours=1)
            assert len(await audit.query(AuditQuery(tenant=tenant, since=at - hour, until=at + hour))) == 1
            assert await audit.query(AuditQuery(tenant=tenant, since=at + hour)) == []
            assert await audit.query(AuditQuery(tenant=tenant, until=datetime(2000, 1, 1, tzinfo=UTC))) == []
        finally:
            await audit.close()
            await store.close()

    async def test_an_untouched_log_verifies(self, database_url: str, tenant: str) -> None:
        store = await open_event_store(database_url)
        audit = SqlAuditLog(create_store_engine(database_url), owns_engine=True)
        try:
            await store.append(f"{tenant}-1", 0, [_event(tenant, "alice", "echo", "c1")] * 3)
            report = await audit.verify_chain()
        finally:
            await audit.close()
            await store.close()
        assert report.first_broken is None
        assert report.checked >= 3

    async def test_editing_a_row_in_the_database_is_detected_at_its_position(
        self, database_url: str, tenant: str
    ) -> None:
        store = await open_event_store(database_url)
        engine = create_store_engine(database_url)
        audit = SqlAuditLog(engine)
        try:
            appended = (
                await store.append(f"{tenant}-1", 0, [_event(tenant, "alice", "echo", "c1")] * 3)
            ).events
            target = appended[1].position
            async with forged(engine, target, tool_name="forged"):
                tampered = await audit.verify_chain()
            restored = await audit.verify_chain()
        finally:
            await engine.dispose()
            await store.close()
        assert (tampered.first_broken, tampered.reason) == (target, "hash mismatch")
        assert restored.first_broken is None

    async def test_deleting_a_row_is_detected_at_the_row_after_it(
        self, database_url: str, tenant: str
    ) -> None:
        store = await open_event_store(database_url)
        engine = create_store_engine(database_url)
        audit = SqlAuditLog(engine)
        try:
            appended = (
                await store.append(f"{tenant}-1", 0, [_event(tenant, "alice", "echo", "c1")] * 3)
            ).events
            await store.mark_published([e.position for e in appended])
            async with deleted(engine, appended[1].position):
                tampered = await audit.verify_chain()
            restored = await audit.verify_chain()
        finally:
            await engine.dispose()
            await store.close()
        assert tampered.first_broken == appended[2].position
        assert restored.first_broken is None
