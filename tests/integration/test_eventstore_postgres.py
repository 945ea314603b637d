"""The event store contract on real PostgreSQL (asyncpg), the database scripts/services.sh runs.

Owns the PostgreSQL wiring: migrate once per session, open stores per test. Tests share the
database with each other and with earlier runs, and keep apart by uuid-prefixed stream and
command names. The cases themselves live in tests/contracts/eventstore_contract.py.
"""

from __future__ import annotations

import pytest

from mcp_ledger.eventstore.migrations import upgrade_to_head
from tests.contracts.eventstore_contract import SqlEventStoreContract

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
