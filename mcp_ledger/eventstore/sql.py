"""SqlEventStore: the event store on SQLAlchemy async Core, one code path for PostgreSQL and SQLite.

Owns appends (optimistic concurrency, command idempotency keyed by tenant, subject and
command id, and outbox rows in the appending transaction), reads in stream and global order,
the outbox queue, and the engine settings an append relies on (SQLite: WAL, busy timeout,
BEGIN IMMEDIATE; PostgreSQL: an advisory lock).
Does not create the schema (migrations/ does, see eventstore.migrations), publish the outbox
(the relay does) or know what events mean (the domain does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    Select,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from mcp_ledger.eventstore.chain import GENESIS
from mcp_ledger.eventstore.ports import AppendResult, CommandKey, ConcurrencyError, NewEvent, StoredEvent
from mcp_ledger.eventstore.postgres_append import write_append
from mcp_ledger.eventstore.rows import audit_rows, stored_events
from mcp_ledger.eventstore.statements import (
    CHECK,
    CHECK_AND_TIP,
    COMMAND_EVENTS,
    INSERT_COMMAND,
    INSERT_EVENTS,
    INSERT_OUTBOX,
    key_params,
)
from mcp_ledger.eventstore.tables import EVENT_COLUMNS, events, outbox

# One lock for all appends (the key is the bytes of "ledger"): positions are drawn and
# committed in the same order, so a reader past position N never later sees a smaller one.
_APPEND_LOCK = text("SELECT pg_advisory_xact_lock(119182731994482)")
# Execution option marking the writer's connections, whose SQLite transactions begin IMMEDIATE.
_WRITER = "ledger_writer"
_SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=5000", "foreign_keys=ON")
# Keeps DELETE ... IN (...) well under every backend's bound-parameter limit.
_MARK_CHUNK = 1000


class SqlEventStore:
    """The EventStore port on a SQLAlchemy AsyncEngine (postgresql+asyncpg or sqlite+aiosqlite).

    Make the engine with create_store_engine (or use open_event_store): SQLite appends rely
    on its connection settings.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITER: True})
        # SQLite has one writer at a time; a second connection that asks meanwhile sleeps in
        # its busy handler (1, 2, 5, 10 ms ...) long after the lock is free. Writers of this
        # process queue here instead; other processes still meet busy_timeout.
        self._write_turn = contextlib.nullcontext() if engine.dialect.name == "postgresql" else asyncio.Lock()
        self._postgres = engine.dialect.name == "postgresql"
        # Every read is one statement: on PostgreSQL, autocommit saves the BEGIN/ROLLBACK trips.
        self._reader = engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else engine

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        command: CommandKey | None = None,
    ) -> AppendResult:
        """Append events atomically, with their outbox rows and the command's record.

        Raises:
            ConcurrencyError: the stream is not at expected_version.
        """
        try:
            async with self._write_turn, self._writer.begin() as conn:
                return await self._append(conn, stream_id, expected_version, events, command)
        except IntegrityError as exc:
            # Only a writer that got past the checks unserialised ends here: it lost a race.
            return await self._explain_conflict(exc, stream_id, expected_version, command)

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
        """Events of one stream in version order, after `after_version`."""
        query = select(*EVENT_COLUMNS).where(
            events.c.stream_id == stream_id, events.c.version > after_version
        )
        return await self._fetch(query.order_by(events.c.version))

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events of all streams in global order, after `after_position`, at most `limit`."""
        query = select(*EVENT_COLUMNS).where(events.c.position > after_position)
        return await self._fetch(query.order_by(events.c.position).limit(limit))

    async def events_for_command(self, command: CommandKey) -> list[StoredEvent]:
        """The events appended for a command key, empty if it was never recorded."""
        async with self._reader.connect() as conn:
            return await self._command_events(conn, command) or []

    async def pending_outbox(self, limit: int = 500) -> list[StoredEvent]:
        """Stored events not yet marked published, in global order."""
        joined = outbox.join(events, events.c.position == outbox.c.position)
        query = select(*EVENT_COLUMNS).select_from(joined).order_by(outbox.c.position).limit(limit)
        return await self._fetch(query)

    async def mark_published(self, positions: Sequence[int]) -> None:
        """Remove these positions from the outbox (idempotent)."""
        unique = sorted(set(positions))
        if not unique:
            return
        async with self._write_turn, self._writer.begin() as conn:
            for start in range(0, len(unique), _MARK_CHUNK):
                chunk = unique[start : start + _MARK_CHUNK]
                await conn.execute(delete(outbox).where(outbox.c.position.in_(chunk)))

    async def last_position(self) -> int:
        """The highest global position recorded, 0 when empty."""
        async with self._reader.connect() as conn:
            found = await conn.scalar(select(func.coalesce(func.max(events.c.position), 0)))
        return int(found or 0)

    async def close(self) -> None:
        """Release connections."""
        await self._engine.dispose()

    async def _append(
        self,
        conn: AsyncConnection,
        stream_id: str,
        expected_version: int,
        new: Sequence[NewEvent],
        command: CommandKey | None,
    ) -> AppendResult:
        if self._postgres:
            await conn.execute(_APPEND_LOCK)
        row = (await conn.execute(CHECK_AND_TIP, {"stream_id": stream_id, **key_params(command)})).one()
        current, seen, tip = int(row[0]), bool(row[1]), row[2]
        if seen and command is not None:
            return AppendResult(tuple(await self._command_events(conn, command) or ()), duplicate=True)
        if current != expected_version:
            raise ConcurrencyError(stream_id, expected_version, current)
        recorded_at = datetime.now(UTC)
        command_id = command.command_id if command is not None else None
        rows = audit_rows(tip or GENESIS, stream_id, expected_version, new, command_id, recorded_at)
        if self._postgres:  # events, outbox rows and the command's record: one statement
            return AppendResult(await write_append(conn, stream_id, rows, new, recorded_at, command))
        stored = await self._insert_events(conn, stream_id, rows, new, recorded_at)
        if command is not None:
            record = {
                "tenant": command.tenant,
                "subject": command.subject,
                "command_id": command.command_id,
                "stream_id": stream_id,
                "first_position": stored[0].position if stored else None,
                "last_position": stored[-1].position if stored else None,
                "recorded_at": recorded_at,
            }
            await conn.execute(INSERT_COMMAND, record)
        if stored:
            await conn.execute(INSERT_OUTBOX, {"stream_id": stream_id, "after": expected_version})
        return AppendResult(stored)

    async def _check(
        self, conn: AsyncConnection, stream_id: str, command: CommandKey | None
    ) -> tuple[int, bool]:
        """The stream's version and whether the command is already recorded."""
        row = (await conn.execute(CHECK, {"stream_id": stream_id, **key_params(command)})).one()
        return int(row[0]), bool(row[1])

    async def _insert_events(
        self,
        conn: AsyncConnection,
        stream_id: str,
        rows: list[dict[str, Any]],
        new: Sequence[NewEvent],
        recorded_at: datetime,
    ) -> tuple[StoredEvent, ...]:
        if not new:
            return ()
        position_of = {
            version: position for version, position in (await conn.execute(INSERT_EVENTS, rows)).all()
        }
        return stored_events(stream_id, rows, new, recorded_at, position_of)

    async def _command_events(self, conn: AsyncConnection, command: CommandKey) -> list[StoredEvent] | None:
        """The command's events, [] if it appended none, None if it was never recorded."""
        rows = (await conn.execute(COMMAND_EVENTS, key_params(command))).all()
        if not rows:
            return None
        return [
            _to_event(row._mapping)
            for row in rows
            if row.position is not None and row.stream_id == row.command_stream
        ]

    async def _explain_conflict(
        self, exc: IntegrityError, stream_id: str, expected_version: int, command: CommandKey | None
    ) -> AppendResult:
        """After a lost race the winner has committed: report it as a duplicate or a conflict.

        Raises:
            ConcurrencyError: the stream moved past expected_version.
            IntegrityError: the violation was neither of those.
        """
        async with self._reader.connect() as conn:
            if command is not None:
                recorded = await self._command_events(conn, command)
                if recorded is not None:
                    return AppendResult(tuple(recorded), duplicate=True)
            actual, _ = await self._check(conn, stream_id, None)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual) from exc
        raise exc

    async def _fetch(self, query: Select[Any]) -> list[StoredEvent]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_to_event(row._mapping) for row in rows]


def _to_event(values: RowMapping) -> StoredEvent:
    return StoredEvent(
        position=values["position"],
        stream_id=values["stream_id"],
        version=values["version"],
        event_type=values["event_type"],
        schema_version=values["schema_version"],
        data=values["data"],
        metadata=values["metadata"],
        recorded_at=values["recorded_at"],
    )


async def open_event_store(url: str) -> SqlEventStore:
    """A store on `url` (postgresql+asyncpg://… or sqlite+aiosqlite:///path), connected once
    to fail fast. The schema must already be migrated (eventstore.migrations.upgrade_to_head).

    Raises:
        sqlalchemy.exc.ArgumentError: the URL is malformed or names no installed driver.
        sqlalchemy.exc.OperationalError: the database cannot be reached.
    """
    engine = create_store_engine(url)
    try:
        async with engine.connect():
            pass
    except BaseException:
        await engine.dispose()
        raise
    return SqlEventStore(engine)


def create_store_engine(url: str, **options: Any) -> AsyncEngine:
    """An engine for `url` with the settings the store relies on; `options` go to
    create_async_engine. For SQLite: the file's directory is created, WAL, busy timeout,
    foreign keys, and BEGIN IMMEDIATE for the store's writes.

    Raises:
        sqlalchemy.exc.ArgumentError: the URL is malformed or names no installed driver.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, **options)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, **options)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # sqlite3 would otherwise BEGIN on its own (and only before DML); _on_sqlite_begin does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    # A deferred writer that read first cannot wait for the write lock (SQLITE_BUSY at once);
    # IMMEDIATE takes it up front, so busy_timeout queues concurrent appends instead.
    immediate = conn.get_execution_options().get(_WRITER, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
