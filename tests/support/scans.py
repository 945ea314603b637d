"""Where a stack keeps data, read the way someone holding its disks would: every file of a
data directory, every row of every PostgreSQL table, every Redis key under a prefix, the
Kafka log segments of a topic prefix. Tests look for a marker in the clear with these."""

from __future__ import annotations

import os
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text

from mcp_ledger.eventstore.sql import create_store_engine

TOPICS = ("ledger.commands", "ledger.events", "ledger.compliance", "ledger.plan-runs")


def files_holding(directory: Path, needle: bytes) -> list[str]:
    """Every file under `directory` whose bytes hold `needle` (SQLite, its WAL, blob files)."""
    return [str(path) for path in directory.rglob("*") if path.is_file() and needle in path.read_bytes()]


def kafka_log_dirs() -> list[Path]:
    """Where the services' Kafka keeps its partitions (log.dirs of its server.properties)."""
    services = Path(os.environ.get("LEDGER_SERVICES_DIR", Path.home() / ".cache" / "mcp-ledger" / "services"))
    for line in (services / "kafka" / "server.properties").read_text().splitlines():
        if line.startswith("log.dirs="):
            return [Path(entry) for entry in line.removeprefix("log.dirs=").split(",")]
    raise AssertionError("no log.dirs in the Kafka server.properties")


def kafka_segments(prefix: str) -> list[Path]:
    """The log segment files of the topics named with this prefix."""
    return [
        segment
        for directory in kafka_log_dirs()
        for topic in TOPICS
        for segment in directory.glob(f"{prefix}{topic}-*/*.log")
    ]


async def postgres_rows_holding(url: str, needle: str) -> dict[str, int]:
    """Rows of every table of the database whose text form holds `needle`, per table."""
    engine = create_store_engine(url)
    found: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            names = (
                await conn.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                )
            ).scalars()
            for name in list(names):
                hits = await conn.scalar(
                    text(f'SELECT count(*) FROM "{name}" AS t WHERE t::text LIKE :pattern'),
                    {"pattern": f"%{needle}%"},
                )
                if hits:
                    found[name] = int(hits)
    finally:
        await engine.dispose()
    return found


async def redis_values(url: str, prefix: str) -> dict[str, str]:
    """Every key under `prefix` with its value(s) as text."""
    client = Redis.from_url(url)
    values: dict[str, str] = {}
    try:
        async for raw in client.scan_iter(match=f"{prefix}*", count=500):
            key = raw.decode()
            found_type = await client.type(key)
            kind = found_type.decode() if isinstance(found_type, bytes) else str(found_type)
            if kind == "hash":
                values[key] = repr(await client.hgetall(key))
            elif kind == "set":
                values[key] = repr(await client.smembers(key))
            elif kind == "string":
                values[key] = repr(await client.get(key))
            else:
                values[key] = f"<{kind}>"
    finally:
        await client.aclose()
    return values


async def delete_redis_keys(url: str, prefix: str) -> None:
    """Remove every key under `prefix` (a stack's views, sessions and buckets)."""
    client = Redis.from_url(url)
    try:
        async for raw in client.scan_iter(match=f"{prefix}*", count=500):
            await client.delete(raw)
    finally:
        await client.aclose()
