"""Connecting SQL data sources: the DSN allowlist and reflection of table shapes.

Owns which databases a session may connect to (LEDGER_DATA_SOURCE_ALLOWLIST entries are
URLs without credentials: same driver, host, port and, when given, database; SQLite files
must lie under LEDGER_DATA_SOURCE_SQLITE_DIR) and SQLAlchemy reflection on an async engine.
The tools generated from the shapes are the domain's (domain/data_source_tools.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.domain.registry.data_sources import ColumnShape, ForeignKeyShape, TableShape

ASYNC_DRIVERS = {"postgresql+asyncpg": "postgresql", "sqlite+aiosqlite": "sqlite"}


@dataclass(frozen=True)
class DataSourcePolicy:
    allowlist: tuple[str, ...] = ()
    sqlite_dir: Path | None = None


def _sqlite_problem(url: URL, sqlite_dir: Path | None) -> str | None:
    if sqlite_dir is None:
        return "SQLite data sources are not enabled (LEDGER_DATA_SOURCE_SQLITE_DIR)"
    if not url.database or url.database == ":memory:" or url.query:
        return "a SQLite data source must be a plain file path"
    path = Path(url.database).resolve()
    if not path.is_relative_to(sqlite_dir.resolve()) or not path.is_file():
        return "that SQLite file is not in the allowed directory"
    return None


def _entry_allows(entry: URL, url: URL) -> bool:
    same_place = (entry.drivername, entry.host, entry.port) == (url.drivername, url.host, url.port)
    return same_place and (not entry.database or entry.database == url.database)


def dsn_problem(dsn: str, policy: DataSourcePolicy) -> str | None:
    """None when a session may connect to this DSN, else why not (never echoes the DSN)."""
    try:
        url = make_url(dsn)
    except ArgumentError:
        return "the DSN is not a database URL"
    if url.drivername not in ASYNC_DRIVERS:
        return f"driver {url.drivername!r} is not supported; use {' or '.join(ASYNC_DRIVERS)}"
    if url.drivername == "sqlite+aiosqlite":
        return _sqlite_problem(url, policy.sqlite_dir)
    entries = []
    for raw in policy.allowlist:
        try:
            entries.append(make_url(raw))
        except ArgumentError:
            continue
    if not any(_entry_allows(entry, url) for entry in entries):
        return "that database is not on the data source allowlist"
    return None


_JSON_TYPES: tuple[tuple[type[Any], str], ...] = (
    (sa.Boolean, "boolean"),
    (sa.Integer, "integer"),
    (sa.Numeric, "number"),
    (sa.String, "string"),
    (sa.Date, "string"),
    (sa.DateTime, "string"),
)


def _json_type(column_type: Any) -> str:
    for sa_type, json_type in _JSON_TYPES:
        if isinstance(column_type, sa_type):
            return json_type
    return "any"


def _shapes(connection: sa.Connection, schema: str | None, only: set[str] | None) -> list[TableShape]:
    inspector = sa.inspect(connection)
    shapes = []
    for name in inspector.get_table_names(schema=schema):
        if only is not None and name not in only:
            continue
        columns = tuple(
            ColumnShape(c["name"], _json_type(c["type"]), bool(c.get("nullable", True)))
            for c in inspector.get_columns(name, schema=schema)
        )
        primary = tuple(inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or ())
        fks = tuple(
            ForeignKeyShape(
                tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"])
            )
            for fk in inspector.get_foreign_keys(name, schema=schema)
            if fk.get("referred_schema") in {None, schema}
        )
        shapes.append(TableShape(name, columns, primary, fks, schema))
    return shapes


async def reflect(dsn: str, schema: str | None = None, tables: list[str] | None = None) -> list[TableShape]:
    """Table shapes of a database (one schema), by SQLAlchemy reflection.

    Raises:
        ToolExecutionError: the database cannot be reached or reflected.
    """
    engine = create_async_engine(dsn)
    only = set(tables) if tables else None
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_shapes, schema, only)
    except (SQLAlchemyError, OSError) as error:
        detail = str(getattr(error, "orig", None) or type(error).__name__).splitlines()[0][:300]
        raise ToolExecutionError("data_source_error", f"cannot reflect the data source: {detail}") from None
    finally:
        await engine.dispose()
