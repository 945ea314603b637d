"""Compliance ports on the real services: key store and audit log on PostgreSQL, session view
retention and purging on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from tests.contracts.audit_contract import AuditLogContract
from tests.contracts.keystore_contract import KeyStoreContract
from tests.contracts.session_views_contract import view
from tests.integration.databases import private_database

pytestmark = pytest.mark.integration

RING = KekRing([Kek(new_key())])


@pytest.fixture(scope="module")
def postgres_url(services_env: dict[str, str]) -> str:
    upgrade_to_head(services_env["LEDGER_STORE"])
    return services_env["LEDGER_STORE"]


class TestPostgresKeyStore(KeyStoreContract):
    @pytest.fixture
    async def keys(self, postgres_url: str) -> AsyncIterator[KeyStore]:
        store = SqlKeyStore(create_store_engine(postgres_url), RING, owns_engine=True)
        yield store
        await store.close()

    @pytest.fixture
    async def rival(self, postgres_url: str) -> AsyncIterator[KeyStore]:
        store = SqlKeyStore(create_store_engine(postgres_url), RING, owns_engine=True)
        yield store
        await store.close()


@pytest.fixture(scope="module")
def audit_database(services_env: dict[str, str]) -> Iterator[str]:
    """The audit tests' own database: the chain tests forge rows and verify the whole chain."""
    with private_database(services_env) as env:
        yield env["LEDGER_STORE"]


class TestPostgresAuditLog(AuditLogContract):
    @pytest.fixture
    def database_url(self, audit_database: str) -> str:
        return audit_database


async def test_redis_session_views_expire_after_their_ttl(services_env: dict[str, str], unique: str) -> None:
    views = RedisSessionViewStore.from_url(services_env["LEDGER_STATE"], prefix=f"ttl-{unique}:", ttl=0.2)
    try:
        assert await views.compare_and_set(view("s1", 1, secret="x"), 0)
        async with asyncio.timeout(5):
            while await views.get("acme", "s1") is not None or await views.sessions_of("acme", "alice"):
                await asyncio.sleep(0.05)
    finally:
        await views.clear()
        await views.close()


async def test_a_tenants_retention_overrides_the_default_ttl(
    services_env: dict[str, str], unique: str
) -> None:
    views = RedisSessionViewStore.from_url(
        services_env["LEDGER_STATE"], prefix=f"ret-{unique}:", ttl=0.0, tenant_ttl={"short": 0.2}
    )
    try:
        assert await views.compare_and_set(view("s1", 1, tenant="short"), 0)
        assert await views.compare_and_set(view("s2", 1, tenant="kept"), 0)
        async with asyncio.timeout(5):
            while await views.get("short", "s1") is not None:
                await asyncio.sleep(0.05)
        assert await views.get("kept", "s2") is not None
    finally:
        await views.clear()
        await views.close()
