"""A store written before command keys were scoped (revision 0006), migrated to head.

One scenario for SQLite (unit) and PostgreSQL (integration): rows the old store wrote, the
way it wrote them, must still make their commands duplicates after the migration, under the
key the code now asks with, while an issuer who never sent that id is not found.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from mcp_ledger.eventstore.migrations import alembic_config
from mcp_ledger.eventstore.ports import CommandKey, NewEvent
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.eventstore.tables import events

BEFORE = "0006"
"""The last revision whose commands table was keyed by the bare command id."""
SESSION = "tenant:acme:session:s-legacy"
PRIVACY = "tenant:acme:privacy:bob"
CALL = CommandKey("acme", "alice", "c-call")
OPT_OUT = CommandKey("acme", "root", "c-opt:optout")
"""An admin's opt-out for bob: its event names bob, its issuer is `requested_by`."""
EMPTY = CommandKey("globex", "", "c-empty")
"""A command that appended nothing: its tenant comes from its stream, its subject is unknown."""

_commands_0006 = sa.Table(
    "commands",
    sa.MetaData(),
    sa.Column("command_id", sa.Text(), primary_key=True),
    sa.Column("stream_id", sa.Text()),
    sa.Column("first_position", sa.BigInteger()),
    sa.Column("last_position", sa.BigInteger()),
    sa.Column("recorded_at", sa.DateTime(timezone=True)),
)


async def migrate(url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the database at `url` to `revision`; Alembic runs its own loop."""
    move = command.downgrade if down else command.upgrade
    await asyncio.to_thread(move, alembic_config(url), revision)


def _event(stream: str, metadata: dict[str, str]) -> dict[str, object]:
    return {
        "stream_id": stream,
        "version": 1,
        "event_type": "Noted",
        "schema_version": 1,
        "data": {"command": metadata["command_id"]},
        "metadata": metadata,
        "recorded_at": datetime.now(UTC),
        "command_id": metadata["command_id"],
        "tenant": metadata["tenant"],
        "subject": metadata["subject"],
        "chain_hash": "0" * 64,
    }


def _command(key: CommandKey, stream: str, position: int | None) -> dict[str, object]:
    return {
        "command_id": key.command_id,
        "stream_id": stream,
        "first_position": position,
        "last_position": position,
        "recorded_at": datetime.now(UTC),
    }


async def write_as_0006(url: str) -> None:
    """The rows the old store wrote for CALL, OPT_OUT and EMPTY."""
    engine = create_store_engine(url)
    try:
        async with engine.begin() as conn:
            call = {"command_id": CALL.command_id, "tenant": "acme", "subject": "alice"}
            opt_out = {
                "command_id": OPT_OUT.command_id,
                "tenant": "acme",
                "subject": "bob",
                "requested_by": "root",
            }
            insert = sa.insert(events).returning(events.c.position)
            first = (await conn.execute(insert, _event(SESSION, call))).scalar_one()
            second = (await conn.execute(insert, _event(PRIVACY, opt_out))).scalar_one()
            rows = [_command(CALL, SESSION, first), _command(OPT_OUT, PRIVACY, second)]
            await conn.execute(
                sa.insert(_commands_0006), [*rows, _command(EMPTY, "tenant:globex:call:c-empty", None)]
            )
    finally:
        await engine.dispose()


async def legacy_commands_are_still_recorded(url: str) -> None:
    """The assertions on a store migrated from BEFORE with write_as_0006's rows."""
    store = await open_event_store(url)
    try:
        again = await store.append(SESSION, 1, [NewEvent("Noted", {"n": 9})], command=CALL)
        assert again.duplicate
        assert [e.data for e in again.events] == [{"command": CALL.command_id}]
        assert [e.data for e in await store.events_for_command(OPT_OUT)] == [{"command": OPT_OUT.command_id}]
        assert (await store.append("tenant:globex:call:c-empty", 0, [], command=EMPTY)).duplicate
        # Nobody else's command of those ids was recorded: bob's c-call is a command of its own.
        for stranger in (CommandKey("acme", "bob", "c-call"), CommandKey("globex", "alice", "c-call")):
            assert await store.events_for_command(stranger) == []
        bobs = CommandKey("acme", "bob", CALL.command_id)
        assert not (
            await store.append("tenant:acme:session:s-bob", 0, [NewEvent("Noted", {"n": 3})], command=bobs)
        ).duplicate
    finally:
        await store.close()


async def round_trip_keeps_the_first_record_of_each_id(url: str) -> None:
    """Downgrade to BEFORE and upgrade again after legacy_commands_are_still_recorded: the
    downgrade keeps the earliest record of an id two issuers used (alice's c-call)."""
    await migrate(url, BEFORE, down=True)
    engine = create_store_engine(url)
    try:
        async with engine.connect() as conn:
            ids = sorted((await conn.execute(sa.select(_commands_0006.c.command_id))).scalars())
    finally:
        await engine.dispose()
    assert ids == sorted({CALL.command_id, OPT_OUT.command_id, EMPTY.command_id})
    await migrate(url, "head")
    store = await open_event_store(url)
    try:
        assert [e.data for e in await store.events_for_command(CALL)] == [{"command": CALL.command_id}]
    finally:
        await store.close()
