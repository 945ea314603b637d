"""The registry on real services, with real access tokens: a registration made through one API
replica is listed by another (Kafka, PostgreSQL, Redis), and a PostgreSQL data source gives a
session its tools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.projections.registry.redis import RedisRegistryViewStore
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack, ledger_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(shared_distributed_stack: DistributedStack) -> DistributedStack:
    """Two API replicas and two workers with auth on; the tests keep apart by tenant."""
    return shared_distributed_stack


@pytest.fixture
def admin(stack: DistributedStack, unique: str) -> str:
    """A token of an admin of this test's own tenant."""
    return stack.token(f"tenant-{unique}", "root", ("admin",))


def _tool(name: str, base_url: str = "http://127.0.0.1:9") -> dict[str, object]:
    return {
        "name": name,
        "description": "a registered tool",
        "input_schema": {"type": "object"},
        "binding": {"kind": "http", "method": "GET", "base_url": base_url},
    }


async def _names(url: str, token: str, session: str | None = None) -> set[str]:
    async with mcp_client(url, session=session, token=token) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_a_tool_registered_through_one_replica_is_listed_by_another(
    stack: DistributedStack, admin: str
) -> None:
    first, second = stack.urls
    async with mcp_client(first, token=admin) as client:
        registered = structured(await client.call_tool("register_tools", {"tools": [_tool("weather")]}))
        refused = await client.call_tool("register_tools", {"tools": [_tool("intranet", "http://10.1.2.3")]})
    assert registered["registered"] == ["weather"]
    assert refused.is_error
    # Written through to Redis before the call was answered: no waiting needed on the other replica.
    names = await _names(second, admin)
    assert "weather" in names
    assert "intranet" not in names
    async with mcp_client(second, token=admin) as client:
        await client.call_tool("remove_tool", {"name": "weather"})
    assert "weather" not in await _names(first, admin)


async def test_projections_rebuild_rebuilds_the_registry_views_equal_to_the_live_ones(
    stack: DistributedStack, admin: str, unique: str
) -> None:
    env = stack.env
    async with mcp_client(stack.urls[0], token=admin) as client:
        structured(await client.call_tool("register_tools", {"tools": [_tool(f"kept_{unique}")]}))
        structured(await client.call_tool("register_tools", {"tools": [_tool(f"gone_{unique}")]}))
        structured(await client.call_tool("remove_tool", {"name": f"gone_{unique}"}))
    rebuilt_prefix = f"rebuilt-{unique}:"
    await asyncio.to_thread(
        ledger_cli, {**env, "LEDGER_STATE_PREFIX": rebuilt_prefix}, "projections", "rebuild"
    )
    live = RedisRegistryViewStore.from_url(env["LEDGER_STATE"], prefix=env["LEDGER_STATE_PREFIX"])
    rebuilt = RedisRegistryViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt_prefix)
    rebuilt_sessions = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt_prefix)
    try:
        tenant = f"tenant-{unique}"
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
async def shop_schema(stack: DistributedStack, unique: str) -> AsyncIterator[str]:
    schema = f"shop_{unique}"
    engine = create_async_engine(stack.store_url)
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
    stack: DistributedStack, unique: str, shop_schema: str
) -> None:
    first, second = stack.urls
    analyst = stack.token(f"tenant-{unique}", "ann", ("data-analyst",))
    async with mcp_client(first, mode="2026-07-28", token=analyst) as client:
        session = structured(await client.call_tool("session_open", {}))["session_id"]
    arguments = {"name": "shop", "dsn": stack.store_url, "schema": shop_schema}
    async with mcp_client(first, session=session, token=analyst) as client:
        connected = structured(await client.call_tool("connect_data_source", arguments))
    assert "shop_customers_orders_by_customer_id" in connected["registered"]
    async with asyncio.timeout(20), mcp_client(second, session=session, token=analyst) as client:
        while "shop_orders_read" not in {tool.name for tool in (await client.list_tools()).tools}:
            await asyncio.sleep(0.05)  # the session view may lag on this replica; bounded
        orders = structured(await client.call_tool("shop_customers_orders_by_customer_id", {"id": 1}))
        row = structured(await client.call_tool("shop_orders_read", {"id": 10}))
    assert orders == {"rows": [{"id": 10, "customer_id": 1, "total": 12.5}]}
    assert row["found"] is True
