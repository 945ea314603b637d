"""Alembic environment for the event store: runs migrations on an async engine.

Owns how a migration run connects (the URL from config.attributes["url"] or the sqlalchemy.url
option; asyncpg or aiosqlite) and that concurrent runs on PostgreSQL queue instead of racing.
Does not define the schema (versions/ does) or decide when to migrate (the caller does, through
mcp_ledger.eventstore.migrations).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool, text

from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.eventstore.tables import metadata

# Lets two processes start against one PostgreSQL database: the second waits, then finds head.
_MIGRATION_LOCK = text("SELECT pg_advisory_xact_lock(119182731994483)")


def _url() -> str:
    config = context.config
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set config.attributes['url'] or sqlalchemy.url")
    return str(url)


def _run_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(_MIGRATION_LOCK)
        context.run_migrations()


async def _run_async() -> None:
    engine = create_store_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_async())
    else:
        _run_on(connection)


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
