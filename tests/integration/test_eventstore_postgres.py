"""The event store contract on real PostgreSQL (asyncpg), the database scripts/services.sh runs.

Owns the PostgreSQL wiring: migrate once per session, open stores per test. Tests share the
database with each other and with earlier runs, and keep apart by uuid-prefixed stream and
command names. The cases themselves live in tests/contracts/eventstore_contract.py.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event

from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine
from tests.contracts.eventstore_contract import SqlEventStoreContract, issued, noted

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def postgres_url(services_env: dict[str, str]) -> str:
    """The services' PostgreSQL, migrated to head once per session."""
    url = services_env["LEDGER_STORE"]
    upgrade_to_head(url)
    return url


class TestPostgresEventStore(SqlEventStoreContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url

    async def test_an_append_with_a_command_writes_events_outbox_and_record_in_one_statement(
        self, postgres_url: str
    ) -> None:
        engine = create_store_engine(postgres_url)
        statements: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        store = SqlEventStore(engine)
        try:
            stream = f"one-statement-{uuid.uuid4().hex}"
            await store.append(stream, 0, noted(1, 2, 3), command=issued(uuid.uuid4().hex))
            stored = await store.read_stream(stream)
        finally:
            await store.close()
        appending = statements[: len(statements) - 1]  # the last one is the read
        writes = [s for s in appending if "INSERT" in s]
        # The advisory lock, the version/command/tip check, and one INSERT for the rest.
        assert len(appending) == 3
        assert len(writes) == 1
        assert all(table in writes[0] for table in ("INTO events", "INTO outbox", "INTO commands"))
        assert [e.version for e in stored] == [1, 2, 3]
        assert [e.position for e in stored] == sorted(e.position for e in stored)
