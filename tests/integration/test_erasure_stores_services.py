"""What erasure and retention rely on, on the real services: sealed blobs and their
tombstones in PostgreSQL, MCP transport sessions ended per subject in Redis, plan views
expiring with the tenant's retention in Redis, subjects' last activity in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from mcp_ledger.blobs.ports import BlobStore
from mcp_ledger.blobs.sql import SqlBlobStore
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.activity import SubjectActivity
from mcp_ledger.eventstore.activity_sql import SqlSubjectActivity
from mcp_ledger.eventstore.ports import NewEvent
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.mcp_api.transport.sessions import TransportSessions
from mcp_ledger.mcp_api.transport.sessions_redis import RedisTransportSessions
from mcp_ledger.projections.plans.redis import RedisPlanViewStore
from tests.contracts.blob_store_contract import BlobStoreContract
from tests.contracts.plan_views_contract import alices, view
from tests.contracts.transport_sessions_contract import TransportSessionsContract
from tests.integration.databases import private_database

pytestmark = pytest.mark.integration

RING = KekRing([Kek(new_key())])


@pytest.fixture(scope="module")
def postgres_url(services_env: dict[str, str]) -> Iterator[str]:
    with private_database(services_env) as env:
        yield env["LEDGER_STORE"]


class TestPostgresBlobs(BlobStoreContract):
    @pytest.fixture
    async def raw(self, postgres_url: str) -> AsyncIterator[BlobStore]:
        engine = create_store_engine(postgres_url)
        async with engine.begin() as connection:  # the module's own database: empty it per test
            await connection.execute(text("DELETE FROM blobs"))
        store = SqlBlobStore(engine)
        yield store
        await store.close()

    @pytest.fixture
    async def keys(self, postgres_url: str) -> AsyncIterator[KeyStore]:
        keys = SqlKeyStore(create_store_engine(postgres_url), RING, owns_engine=True)
        yield keys
        await keys.close()


class TestRedisTransportSessions(TransportSessionsContract):
    @pytest.fixture
    async def sessions(self, services_env: dict[str, str], unique: str) -> AsyncIterator[TransportSessions]:
        store = RedisTransportSessions.from_url(services_env["LEDGER_STATE"], f"ts-{unique}:")
        yield store
        await store.close()


async def test_a_tenants_retention_expires_its_plan_views(services_env: dict[str, str], unique: str) -> None:
    plans = RedisPlanViewStore.from_url(
        services_env["LEDGER_STATE"], prefix=f"pret-{unique}:", ttl=0.0, tenant_ttl={"short": 0.2}
    )
    try:
        assert await plans.compare_and_set(view("p1", 1, tenant="short"), 0)
        assert await plans.compare_and_set(view("p2", 1, tenant="kept"), 0)
        async with asyncio.timeout(5):
            while await plans.get("short", alices("p1")) is not None or await plans.plans_of(
                "short", "alice"
            ):
                await asyncio.sleep(0.05)
        assert await plans.get("kept", alices("p2")) is not None
    finally:
        await plans.clear()
        await plans.close()


async def test_subject_activity_on_postgresql_lists_live_subjects_with_their_newest_event(
    postgres_url: str, unique: str
) -> None:
    tenant = f"t{unique}"
    keys = SqlKeyStore(create_store_engine(postgres_url), RING, owns_engine=True)
    activity = SqlSubjectActivity(create_store_engine(postgres_url), owns_engine=True)
    store = await open_event_store(postgres_url)
    try:
        for subject in ("alice", "carol"):
            await keys.active_key(tenant, subject)
        metadata = {"tenant": tenant, "subject": "alice"}
        [event] = (
            await store.append(
                f"s-{unique}", 0, [NewEvent("SessionClosed", {"reason": "x"}, metadata=metadata)]
            )
        ).events
        await keys.destroy(tenant, "carol")
        assert await activity.subjects(tenant) == [SubjectActivity(tenant, "alice", event.recorded_at)]
        assert tenant in await activity.tenants()
    finally:
        await store.close()
        await activity.close()
        await keys.close()
