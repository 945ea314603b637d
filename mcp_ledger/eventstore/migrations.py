"""Bring an event store database to the newest schema with Alembic, without an alembic.ini.

Owns finding the migration scripts (packaged as mcp_ledger/_migrations in a wheel, or the
repository's migrations/ in a checkout) and building Alembic's Config in code. Does not hold
the schema itself (migrations/versions does) or decide when to migrate (bootstrap and the CLI do).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

import mcp_ledger


def migrations_directory() -> Path:
    """Where the Alembic scripts are: the wheel's copy first, else the source checkout's.

    Raises:
        FileNotFoundError: neither location holds an env.py.
    """
    package = Path(mcp_ledger.__file__).parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(f"no Alembic migrations beside {package}")


def alembic_config(url: str) -> Config:
    """An Alembic Config for `url` (sqlite+aiosqlite:// or postgresql+asyncpg://)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    # Passed as an attribute, not an option: ConfigParser would treat '%' in a password specially.
    config.attributes["url"] = url
    return config


def upgrade_to_head(url: str) -> None:
    """Apply every migration not yet applied; a no-op when the database is at head.

    Runs its own event loop (migrations/env.py drives an async engine), so call it outside
    one; async code awaits upgrade_to_head_async instead.

    Raises:
        RuntimeError: called from a running event loop.
        sqlalchemy.exc.SQLAlchemyError: the database refused a migration.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), "head")
        return
    raise RuntimeError("upgrade_to_head cannot run inside an event loop; await upgrade_to_head_async")


async def upgrade_to_head_async(url: str) -> None:
    """upgrade_to_head from async code: runs in a worker thread with a loop of its own.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused a migration.
    """
    await asyncio.to_thread(upgrade_to_head, url)
