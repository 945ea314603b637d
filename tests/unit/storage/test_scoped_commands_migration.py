"""Migration 0007 on SQLite: a store written while command keys were bare ids keeps every
command it recorded, under the issuer's key (the scenario is tests/support/legacy_commands.py;
tests/integration/test_security_ids.py runs it on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from tests.support.legacy_commands import (
    BEFORE,
    legacy_commands_are_still_recorded,
    migrate,
    round_trip_keeps_the_first_record_of_each_id,
    write_as_0006,
)


async def test_commands_recorded_before_the_keys_were_scoped_are_still_duplicates(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await migrate(url, BEFORE)
    await write_as_0006(url)

    await migrate(url, "head")

    await legacy_commands_are_still_recorded(url)
    await round_trip_keeps_the_first_record_of_each_id(url)
