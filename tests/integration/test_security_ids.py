"""Findings 1 and 13 on the real services: the API and a worker in their own processes with
auth on (development tokens), Kafka, PostgreSQL and Redis.

carol@globex replays alice@acme's plan and reads nothing of hers; a value carol planted never
comes back from alice's identical plan; bob@acme reuses alice's plan id for a plan of his own.
Then the PostgreSQL side of migration 0007: rows written before command keys were scoped keep
their commands recorded (tests/support/legacy_commands.py, on SQLite in the unit tests).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.mcp_api.auth.dev_tokens import mint_token
from mcp_ledger.projections.plans.redis import RedisPlanViewStore
from mcp_ledger.settings import Settings
from tests.integration.databases import private_database
from tests.support.clients import mcp_client, structured, text_of
from tests.support.legacy_commands import (
    BEFORE,
    legacy_commands_are_still_recorded,
    migrate,
    round_trip_keeps_the_first_record_of_each_id,
    write_as_0006,
)
from tests.support.processes import LedgerProcess, isolated_env, ledger_processes, run_ledger, start_ledger

pytestmark = pytest.mark.integration

AUDIENCE = "mcp-ledger-security-ids"
DAILY_NOTES: dict[str, Any] = {"plan_id": "daily-notes", "tasks": [{"id": "read", "tool_name": "note_list"}]}


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with private_database(services_env) as env:
        yield env


@pytest.fixture
def env(migrated: dict[str, str], unique: str, tmp_path: Path) -> dict[str, str]:
    return {
        **isolated_env(migrated, unique, topics="sid", keys="sid"),
        "LEDGER_NO_AUTH": "false",
        "LEDGER_AUTH_AUDIENCE": AUDIENCE,
        "LEDGER_DATA_DIR": str(tmp_path / "data"),  # the development signing key, shared
        "LEDGER_KEK": base64.b64encode(new_key()).decode(),
    }


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    with ledger_processes(env, tmp_path) as started:
        yield started


def _token(env: dict[str, str], sub: str, tenant: str) -> str:
    return mint_token(
        Path(env["LEDGER_DATA_DIR"]),
        subject=sub,
        tenant=tenant,
        roles=("data-analyst",),
        issuer=Settings.model_fields["auth_issuer"].default,
        audience=AUDIENCE,
    )


async def _notes_then_plan(
    url: str, token: str, notes: dict[str, str], plan: dict[str, Any] = DAILY_NOTES
) -> dict[str, Any]:
    async with mcp_client(url, token=token) as client:
        for key, value in notes.items():
            assert not (await client.call_tool("note_set", {"key": key, "value": value})).is_error
        created = await client.call_tool("create_plan", {"plan": plan})
        assert not created.is_error, text_of(created)
        wait = {"plan_id": plan["plan_id"], "wait_seconds": 60}
        return structured(await client.call_tool("execute_plan", wait))


async def test_replayed_plans_read_and_plant_nothing_across_tenants_and_subjects_on_the_services(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str
) -> None:
    acme, globex = f"acme-{unique}", f"globex-{unique}"
    alice, carol, bob = _token(env, "alice", acme), _token(env, "carol", globex), _token(env, "bob", acme)
    start_ledger(procs, env, tmp_path, "worker")
    api = start_ledger(procs, env, tmp_path, "api")
    await asyncio.to_thread(api.wait_healthy)
    secret, planted = f"secret-{uuid.uuid4().hex}", f"planted-{uuid.uuid4().hex}"
    morning = {**DAILY_NOTES, "plan_id": "morning"}

    alices = await _notes_then_plan(api.url, alice, {"diary": secret})
    carols = await _notes_then_plan(api.url, carol, {})
    carols_planted = await _notes_then_plan(api.url, carol, {"diary": planted}, morning)
    alices_morning = await _notes_then_plan(api.url, alice, {}, morning)
    bobs = await _notes_then_plan(api.url, bob, {"todo": "bob's"})

    assert alices["tasks"]["read"]["output"] == {"notes": {"diary": secret}}
    assert carols["tasks"]["read"]["output"] == {"notes": {}}
    assert carols_planted["tasks"]["read"]["output"] == {"notes": {"diary": planted}}
    assert alices_morning["tasks"]["read"]["output"] == {"notes": {}}
    assert bobs["tasks"]["read"]["output"] == {"notes": {"todo": "bob's"}}
    everything = repr([carols, bobs, alices_morning])
    assert secret not in everything
    assert planted not in repr([alices, alices_morning, bobs])
    # A rebuild (the upgrade path: views are keyed by owner) finds each plan under its owner.
    rebuilt = f"rebuilt-{unique}:"
    await asyncio.to_thread(run_ledger, {**env, "LEDGER_STATE_PREFIX": rebuilt}, "projections", "rebuild")
    views = RedisPlanViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt)
    try:
        found = {
            (tenant, subject): await views.get(tenant, plan_view_id(subject, "daily-notes"))
            for tenant, subject in ((acme, "alice"), (globex, "carol"), (acme, "bob"))
        }
        outputs = {key: view.tasks["read"].output if view else None for key, view in found.items()}
    finally:
        await views.close()
        await _forget(env["LEDGER_STATE"], rebuilt)
    assert outputs == {
        (acme, "alice"): {"notes": {"diary": secret}},
        (globex, "carol"): {"notes": {}},
        (acme, "bob"): {"notes": {"todo": "bob's"}},
    }


async def _forget(state_url: str, prefix: str) -> None:
    """Delete every key the rebuild wrote under its own prefix."""
    client = Redis.from_url(state_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
async def fresh_database(services_env: dict[str, str]) -> AsyncIterator[str]:
    """An empty PostgreSQL database (no migration yet), dropped at the end."""
    base = services_env["LEDGER_STORE"]
    name = f"ledger_mig_{uuid.uuid4().hex[:12]}"
    await _admin(base, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(make_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_commands_recorded_before_the_keys_were_scoped_are_still_duplicates_on_postgres(
    fresh_database: str,
) -> None:
    await migrate(fresh_database, BEFORE)
    await write_as_0006(fresh_database)

    await migrate(fresh_database, "head")

    await legacy_commands_are_still_recorded(fresh_database)
    await round_trip_keeps_the_first_record_of_each_id(fresh_database)
