"""A private PostgreSQL database for one test module, migrated by this code's migrations.

The services' shared database may have been migrated by a newer revision of the project;
a module that must run `migrate` works in its own database instead, dropped at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.processes import run_ledger


async def _execute(store_url: str, statement: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_async_engine(store_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def private_database(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """services_env with LEDGER_STORE pointing at a fresh, migrated database."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    base = services_env["LEDGER_STORE"]
    asyncio.run(_execute(base, f'CREATE DATABASE "{name}"'))
    env = {**services_env, "LEDGER_STORE": base.rsplit("/", 1)[0] + f"/{name}"}
    try:
        run_ledger(env, "migrate")
        yield env
    finally:
        asyncio.run(_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
