"""The registry on real services: a registration made through one API replica is listed by
another (Kafka, PostgreSQL, Redis), and a PostgreSQL data source gives a session its tools."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.projections.registry.redis import RedisRegistryViewStore
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from tests.integration.services import name_fragment
from tests.support.clients import mcp_client, open_session, structured
from tests.support.processes import (
    LedgerProcess,
    isolated_env,
    ledger_processes,
    run_ledger,
    start_ledger,
)

pytestmark = pytest.mark.integration


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as db:
            await db.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """A database of this module's own, migrated to this tree's head: the shared one may be
    at a revision of another branch."""
    name = f"ledger_registry_{uuid.uuid4().hex[:10]}"
    shared = services_env["LEDGER_STORE"]
    asyncio.run(_admin(shared, f"CREATE DATABASE {name}"))
    env = {**services_env, "LEDGER_STORE": make_url(shared).set(database=name).render_as_string(False)}
    try:
        run_ledger(env, "migrate")
        yield env
    finally:
        asyncio.run(_admin(shared, f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def env(migrated: dict[str, str]) -> dict[str, str]:
    unique = name_fragment()
    database = make_url(migrated["LEDGER_STORE"])
    return {
        **isolated_env(migrated, unique),
        "LEDGER_REGISTRY_ALLOWED_HOSTS": "127.0.0.1",
        "LEDGER_DATA_SOURCE_ALLOWLIST": database.set(username=None, password=None).render_as_string(),
    }


@pytest.fixture(scope="module")
def replicas(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LedgerProcess]]:
    """One worker and two API replicas, shared by this module's tests (distinct names each)."""
    tmp = tmp_path_factory.mktemp("registry")
    with ledger_processes(env, tmp) as started:
        start_ledger(started, env, tmp, "worker")
        apis = [start_ledger(started, env, tmp, "api"), start_ledger(started, env, tmp, "api")]
        for api in apis:
            api.wait_healthy()
        yield apis


def _tool(name: str, base_url: str = "http://127.0.0.1:9") -> dict[str, object]:
    return {
        "name": name,
        "description": "a registered tool",
        "input_schema": {"type": "object"},
        "binding": {"kind": "http", "method": "GET", "base_url": base_url},
    }


async def _names(url: str, session: str | None = None) -> set[str]:
    async with mcp_client(url, session=session) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_a_tool_registered_through_one_replica_is_listed_by_another(
    replicas: list[LedgerProcess],
) -> None:
    first, second = replicas
    async with mcp_client(first.url) as client:
        registered = structured(await client.call_tool("register_tools", {"tools": [_tool("weather")]}))
        refused = await client.call_tool("register_tools", {"tools": [_tool("intranet", "http://10.1.2.3")]})
    assert registered["registered"] == ["weather"]
    assert refused.is_error
    # Written through to Redis before the call was answered: no waiting needed on the other replica.
    names = await _names(second.url)
    assert "weather" in names
    assert "intranet" not in names
    async with mcp_client(second.url) as client:
        await client.call_tool("remove_tool", {"name": "weather"})
    assert "weather" not in await _names(first.url)


async def test_projections_rebuild_rebuilds_the_registry_views_equal_to_the_live_ones(
    env: dict[str, str], replicas: list[LedgerProcess], unique: str
) -> None:
    async with mcp_client(replicas[0].url) as client:
        structured(await client.call_tool("register_tools", {"tools": [_tool(f"kept_{unique}")]}))
        structured(await client.call_tool("register_tools", {"tools": [_tool(f"gone_{unique}")]}))
        structured(await client.call_tool("remove_tool", {"name": f"gone_{unique}"}))
    rebuilt_prefix = f"rebuilt-{unique}:"
    run_ledger({**env, "LEDGER_STATE_PREFIX": rebuilt_prefix}, "projections", "rebuild")
    live = RedisRegistryViewStore.from_url(env["LEDGER_STATE"], prefix=env["LEDGER_STATE_PREFIX"])
    rebuilt = RedisRegistryViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt_prefix)
    rebuilt_sessions = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt_prefix)
    try:
        tenant = env["LEDGER_LOCAL_TENANT"]
        live_view, rebuilt_view = await live.get(tenant, None), await rebuilt.get(tenant, None)
    finally:
        await rebuilt.clear()
        await rebuilt_sessions.clear()
        for store in (live, rebuilt, rebuilt_sessions):
            await store.close()
    assert live_view is not None
    assert f"kept_{unique}" in live_view.tools
    assert f"gone_{unique}" not in live_view.tools
    assert rebuilt_view == live_view


@pytest.fixture
async def shop_schema(env: dict[str, str], unique: str) -> AsyncIterator[str]:
    schema = f"shop_{unique}"
    engine = create_async_engine(env["LEDGER_STORE"])
    async with engine.begin() as db:
        await db.execute(sa.text(f"CREATE SCHEMA {schema}"))
        await db.execute(sa.text(f"CREATE TABLE {schema}.customers (id integer PRIMARY KEY, name text)"))
        await db.execute(
            sa.text(
                f"CREATE TABLE {schema}.orders (id integer PRIMARY KEY, "
                f"customer_id integer REFERENCES {schema}.customers(id), total numeric(10, 2))"
            )
        )
        await db.execute(sa.text(f"INSERT INTO {schema}.customers VALUES (1, 'Ada')"))
        await db.execute(sa.text(f"INSERT INTO {schema}.orders VALUES (10, 1, 12.50)"))
    try:
        yield schema
    finally:
        async with engine.begin() as db:
            await db.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        await engine.dispose()


async def test_a_postgres_data_source_gives_its_session_tools_on_another_replica(
    env: dict[str, str], replicas: list[LedgerProcess], shop_schema: str
) -> None:
    first, second = replicas
    session = await open_session(first.url)
    arguments = {"name": "shop", "dsn": env["LEDGER_STORE"], "schema": shop_schema}
    async with mcp_client(first.url, session=session) as client:
        connected = structured(await client.call_tool("connect_data_source", arguments))
    assert "shop_customers_orders_by_customer_id" in connected["registered"]
    async with asyncio.timeout(20), mcp_client(second.url, session=session) as client:
        while "shop_orders_read" not in {tool.name for tool in (await client.list_tools()).tools}:
            await asyncio.sleep(0.05)  # the session view may lag on this replica; bounded
        orders = structured(await client.call_tool("shop_customers_orders_by_customer_id", {"id": 1}))
        row = structured(await client.call_tool("shop_orders_read", {"id": 10}))
    assert orders == {"rows": [{"id": 10, "customer_id": 1, "total": 12.5}]}
    assert row["found"] is True
