"""Integration fixtures: real PostgreSQL, Redis and Kafka started by scripts/services.sh.

The session gets a PostgreSQL database of its own (created here, dropped at the end), so a
branch's migrations never touch the database other checkouts share with it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.services import NAME_FRAGMENTS, ensure_services, name_fragment

pytestmark = pytest.mark.integration


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _topics(bus_url: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bus_url.removeprefix("kafka://"))
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete_topics(bus_url: str, names: set[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bus_url.removeprefix("kafka://"))
    await admin.start()
    try:
        await admin.delete_topics(sorted(names))
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def services_env() -> Iterator[dict[str, str]]:
    """LEDGER_STORE (a fresh database), LEDGER_STATE and LEDGER_BUS of the running services.

    Every test names its topics after its `unique` fragment; the topics named after this
    session's fragments are deleted at its end, because a broker restarting with thousands of
    leftover partitions takes minutes (and other sessions' topics are left alone)."""
    env = ensure_services()
    shared = make_url(env["LEDGER_STORE"])
    name = f"ledger_it_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(env["LEDGER_STORE"], f'CREATE DATABASE "{name}"'))
    try:
        yield {**env, "LEDGER_STORE": shared.set(database=name).render_as_string(hide_password=False)}
    finally:
        asyncio.run(_admin(env["LEDGER_STORE"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        ours = {t for t in asyncio.run(_topics(env["LEDGER_BUS"])) if any(u in t for u in NAME_FRAGMENTS)}
        if ours:
            asyncio.run(_delete_topics(env["LEDGER_BUS"], ours))


@pytest.fixture
def unique() -> str:
    """A fresh name fragment so tests never share topics, tenants or keys."""
    return name_fragment()
