"""Integration fixtures: real PostgreSQL, Redis and Kafka started by scripts/services.sh."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.services import ensure_services

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def services_env() -> dict[str, str]:
    """LEDGER_STORE, LEDGER_STATE and LEDGER_BUS of the running services (started if needed)."""
    return ensure_services()


@pytest.fixture
def unique() -> str:
    """A fresh name fragment so tests never share topics, tenants or keys."""
    return uuid.uuid4().hex[:12]
