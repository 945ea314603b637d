"""A PostgreSQL append's round trips and its one statement text (eventstore/postgres_append.py):
the lock, the check, and the writes in one statement whose text does not depend on the number
of events, so it is compiled and prepared once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import CommandKey, NewEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine

pytestmark = pytest.mark.integration


@pytest.fixture
async def recorded(services_env: dict[str, str]) -> AsyncIterator[tuple[SqlEventStore, list[str]]]:
    await upgrade_to_head_async(services_env["LEDGER_STORE"])
    engine = create_store_engine(services_env["LEDGER_STORE"])
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    store = SqlEventStore(engine)
    try:
        yield store, statements
    finally:
        await store.close()


async def test_an_append_is_the_lock_the_check_and_one_write(
    recorded: tuple[SqlEventStore, list[str]],
) -> None:
    store, statements = recorded
    stream, key = f"s-{uuid.uuid4().hex}", CommandKey("acme", "alice", uuid.uuid4().hex)
    result = await store.append(
        stream, 0, [NewEvent("Noted", {"n": 1}), NewEvent("Noted", {"n": 2})], command=key
    )
    assert [e.version for e in result.events] == [1, 2]
    assert len(statements) == 3
    assert "pg_advisory_xact_lock" in statements[0]
    assert "unnest" in statements[2]


async def test_the_write_is_one_text_whatever_the_number_of_events(
    recorded: tuple[SqlEventStore, list[str]],
) -> None:
    store, statements = recorded
    for size in (1, 3, 7):
        stream = f"s-{uuid.uuid4().hex}"
        await store.append(stream, 0, [NewEvent("Noted", {"n": n}) for n in range(size)])
    writes = {statement for statement in statements if "unnest" in statement}
    assert len(writes) == 1
