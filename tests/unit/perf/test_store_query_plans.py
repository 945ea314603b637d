"""The statements every append runs do not walk a stream's history: their cost stays flat as
a session grows (the query plans SQLite chooses, checked, not timed)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.dialects import sqlite

from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.eventstore.statements import COMMAND_EVENTS, TIP


async def _plan(database: Path, statement: object) -> str:
    compiled = statement.compile(dialect=sqlite.dialect())  # type: ignore[attr-defined]
    engine = create_store_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(None for _ in compiled.positiontup)
            )
            return " | ".join(str(row[-1]) for row in rows)
    finally:
        await engine.dispose()


async def test_finding_a_commands_events_searches_positions_not_its_whole_stream(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    await upgrade_to_head_async(f"sqlite+aiosqlite:///{database}")
    plan = await _plan(database, COMMAND_EVENTS)
    assert "SEARCH events USING INTEGER PRIMARY KEY" in plan, plan
    assert "(stream_id=?)" not in plan, plan


async def test_the_chain_tip_is_read_from_the_end_of_the_log(tmp_path: Path) -> None:
    database = tmp_path / "ledger.db"
    await upgrade_to_head_async(f"sqlite+aiosqlite:///{database}")
    plan = await _plan(database, TIP)
    assert "TEMP B-TREE" not in plan, plan  # no sort of the whole log: the rowid order is used
