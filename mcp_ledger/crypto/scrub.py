"""Scrubbing the database files of destroyed keys' old row versions.

Nulling a wrapped key is not enough on disk: SQLite keeps the previous page images in its
write-ahead log until a checkpoint, PostgreSQL keeps the previous tuple as a dead row in the
table's pages until a vacuum. After a destroy (and after a rotation) this module checkpoints
and truncates the SQLite WAL (the key store's connections write with secure_delete, so the
checkpointed pages hold zeros where the key was), or vacuums the key table on PostgreSQL.

What it cannot reach: PostgreSQL's own WAL segments and their archives, backups, and the
blocks a filesystem freed. Copies of a wrapped key there are made useless by retiring the
KEK that wrapped it (rotation.py), not by this module.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

CHECKPOINT_ATTEMPTS = 40
CHECKPOINT_PAUSE = 0.05


async def scrub_destroyed_keys(engine: AsyncEngine) -> bool:
    """Remove old versions of the key table's rows from the files the database controls;
    returns whether that completed (False: logged, e.g. a reader kept the SQLite WAL busy)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM subject_keys")
        return True
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return True
    for _ in range(CHECKPOINT_ATTEMPTS):
        if await asyncio.to_thread(_checkpoint, database):
            return True
        await asyncio.sleep(CHECKPOINT_PAUSE)
    log.error(
        "the SQLite WAL of %s could not be truncated after a key was destroyed (a reader kept it "
        "busy); the next checkpoint removes the old key's page images",
        database,
    )
    return False


def _checkpoint(database: str) -> bool:
    # A connection of its own, outside SQLAlchemy's transactions: a checkpoint cannot run in one.
    connection = sqlite3.connect(database, timeout=5.0, isolation_level=None)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()
    return int(busy) == 0
