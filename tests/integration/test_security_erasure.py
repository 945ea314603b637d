"""Erasure as the attacker sees it, on the real services.

- Someone with the PostgreSQL data directory after an erasure: the key table's pages hold no
  copy of the destroyed wrapped key; the WAL still does (nothing in the gateway's reach
  removes it), but the KEK that wrapped it is gone from the deployment's KEK file.
- The erased subject's own client on the distributed stack (API and two workers, Kafka,
  PostgreSQL, Redis): the exact sequence note_get, erase, note_get within 5 s returns nothing
  of the note, and the export shows nothing of it.
- The barrier itself: every live member must confirm, a hung member keeps the erasure from
  completing, a member that loses Redis stops caching.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mcp_ledger.consumers.compliance.barrier import BarrierError, SubjectCaches
from mcp_ledger.consumers.compliance.barrier_redis import RedisBarrier
from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.crypto.cipher import DecryptionError, decrypt, new_key, wrap_associated
from mcp_ledger.crypto.kek import Kek, KekRing, parse_keks, write_kek_file
from mcp_ledger.crypto.rotation import KekRotation
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from tests.integration.databases import private_database
from tests.support.clients import mcp_client, structured, text_of
from tests.support.processes import LedgerProcess, isolated_env, ledger_processes, run_ledger, start_ledger

pytestmark = pytest.mark.integration

MODE = "2026-07-28"
PG_DIRS = ("/var/lib/postgresql/mcp-ledger", str(Path.home() / ".cache/mcp-ledger/services/postgres"))


@pytest.fixture(scope="module")
def database(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with private_database(services_env) as env:
        yield env


def _cluster_dir(store_url: str) -> Path:
    """The data directory of the services' PostgreSQL (readable by the test's user)."""
    port = str(make_url(store_url).port)
    for base in filter(None, (os.environ.get("LEDGER_PG_DIR"), *PG_DIRS)):
        pid_file = Path(base) / "data" / "postmaster.pid"
        try:
            if pid_file.read_text().splitlines()[3] == port:
                return Path(base)
        except (OSError, IndexError):
            continue
    pytest.skip("the PostgreSQL data directory of the services is not readable from this test")


def _superuser(store_url: str, cluster: Path) -> AsyncEngine:
    # Over the cluster's own socket as the postgres user (trust): CHECKPOINT and data_directory.
    url = make_url(store_url)
    return create_async_engine(
        f"postgresql+asyncpg://postgres@/{url.database}?host={cluster}&port={url.port}",
        isolation_level="AUTOCOMMIT",
    )


async def test_after_an_erasure_no_table_page_holds_the_destroyed_key_and_its_wal_copy_opens_with_no_kek(
    database: dict[str, str], tmp_path: Path
) -> None:
    url, tenant = database["LEDGER_STORE"], f"t{uuid.uuid4().hex[:10]}"
    cluster = _cluster_dir(url)
    kek_file = tmp_path / "kek"
    write_kek_file(kek_file, [Kek(new_key())])
    keys = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
    store = await open_event_store(url)
    admin = _superuser(url, cluster)
    try:
        stays = await keys.active_key(tenant, "bob")
        alice = await keys.active_key(tenant, "alice")
        async with admin.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT kek_id, wrapped_key FROM subject_keys WHERE key_id = :k"),
                    {"k": alice.key_id},
                )
            ).one()
            relation = str((await conn.execute(text("SELECT pg_relation_filepath('subject_keys')"))).scalar())
            data_dir = Path(str((await conn.execute(text("SHOW data_directory"))).scalar()))
            await conn.execute(text("CHECKPOINT"))
        kek_id, wrapped = str(row.kek_id), bytes(row.wrapped_key)
        assert wrapped in (data_dir / relation).read_bytes()  # the needle is on disk before

        async def ignore(_events: object) -> None:
            return None

        erasure = ErasureHandler(store, keys, [], ignore, keks=KekRotation(kek_file, keys))
        done = await erasure.handle(EraseSubject(tenant=tenant, subject="alice", requested_by="dpo"))
        async with admin.connect() as conn:
            await conn.execute(text("CHECKPOINT"))  # what the server does within checkpoint_timeout
        pages = (data_dir / relation).read_bytes()
        wal = [p.read_bytes() for p in (data_dir / "pg_wal").iterdir() if p.is_file()]
        assert await keys.key(tenant, "bob", stays.key_id) == stays  # rewrapped, still readable
    finally:
        await admin.dispose()
        await store.close()
        await keys.close()
    assert (done.keys_destroyed, done.purged["retired_keks"]) == (1, 1)
    assert wrapped not in pages  # the dead tuple was vacuumed out of the table's pages
    assert any(wrapped in segment for segment in wal)  # the WAL keeps a copy, out of reach…
    ring = parse_keks(kek_file.read_text())
    assert kek_id not in {kek.kek_id for kek in ring}  # …wrapped by a KEK the deployment dropped
    for kek in ring:
        with pytest.raises(DecryptionError):
            decrypt(kek.key, wrapped, wrap_associated(kek.kek_id, tenant, "alice", alice.key_id))


@pytest.fixture
def stack_env(services_env: dict[str, str], unique: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with private_database(services_env) as env:
        kek_file = tmp_path / "shared-kek"
        write_kek_file(kek_file, [Kek(new_key())])
        isolated = isolated_env(env, unique, topics="se", keys="se")
        del isolated["LEDGER_KEK"]  # LEDGER_KEK would win over the file, and it is never rotated
        yield {
            **isolated,
            "LEDGER_LOCAL_SUBJECT": f"subject-{unique}",
            "LEDGER_KEK_FILE": str(kek_file),  # shared and writable: erasures rotate it
            "LEDGER_DATA_DIR": str(tmp_path / "data"),
        }


@pytest.fixture
def stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[LedgerProcess]:
    with ledger_processes(stack_env, tmp_path) as started:
        start_ledger(started, stack_env, tmp_path, "worker")
        start_ledger(started, stack_env, tmp_path, "worker")
        api = start_ledger(started, stack_env, tmp_path, "api")
        api.wait_healthy()
        yield api


async def _tool(url: str, session: str, tool: str, arguments: dict[str, Any]) -> str:
    async with mcp_client(url, session=session, mode=MODE) as client:
        result = await client.call_tool(tool, arguments)
    return text_of(result) + json.dumps(result.structured_content)


async def test_on_the_distributed_stack_a_note_read_before_the_erasure_is_gone_right_after_it(
    stack: LedgerProcess, stack_env: dict[str, str]
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    # Several sessions, so some land on the worker that does not run the erasure: its caches
    # (and the API's) are the ones only the barrier reaches.
    sessions = []
    for _ in range(6):
        async with mcp_client(stack.url, mode=MODE) as client:
            sessions.append(structured(await client.call_tool("session_open", {}))["session_id"])
    for session in sessions:
        await _tool(stack.url, session, "note_set", {"key": "secret", "value": marker})
        assert marker in await _tool(stack.url, session, "note_get", {"key": "secret"})

    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.post(
            stack.url.removesuffix("/mcp") + "/admin/erasures",
            json={"subject": stack_env["LEDGER_LOCAL_SUBJECT"]},
        )
    erased_at = asyncio.get_running_loop().time()
    after = [await _tool(stack.url, session, "note_get", {"key": "secret"}) for session in sessions]

    assert answer.status_code == 200, answer.text
    assert asyncio.get_running_loop().time() - erased_at < 5
    assert [marker in seen for seen in after] == [False] * len(sessions)
    record = answer.json()
    assert record["purged"]["replica_caches"] == 3  # two workers and the API replica
    assert record["purged"]["retired_keks"] == 1
    exported = run_ledger(
        stack_env,
        "export",
        "--tenant",
        stack_env["LEDGER_LOCAL_TENANT"],
        "--subject",
        stack_env["LEDGER_LOCAL_SUBJECT"],
    )
    assert marker not in exported
    assert '"ErasureCompleted"' in exported


class Forgets:
    """A cache that records what it was told: subjects to forget, caching on and off."""

    def __init__(self) -> None:
        self.forgotten: list[tuple[str, str]] = []
        self.switched: list[bool] = []

    @property
    def caching(self) -> bool:
        return self.switched[-1] if self.switched else True

    def forget_subject(self, tenant: str, subject: str) -> None:
        self.forgotten.append((tenant, subject))

    def set_caching(self, enabled: bool) -> None:
        self.switched.append(enabled)


@pytest.fixture
async def members(
    services_env: dict[str, str], unique: str
) -> AsyncIterator[list[tuple[RedisBarrier, Forgets]]]:
    started: list[tuple[RedisBarrier, Forgets]] = []
    for _ in range(2):
        caches, cache = SubjectCaches(), Forgets()
        caches.register(cache)
        member = RedisBarrier.from_url(services_env["LEDGER_STATE"], f"bar-{unique}:", caches, timeout=1.5)
        await member.start()
        started.append((member, cache))
    yield started
    for member, _ in started:
        await member.close()


async def _wait_caching(cache: Forgets, expected: bool) -> None:
    async with asyncio.timeout(10):
        while cache.caching is not expected:
            await asyncio.sleep(0.02)


async def test_the_barrier_waits_for_every_live_member_and_not_for_a_dead_one(
    members: list[tuple[RedisBarrier, Forgets]], services_env: dict[str, str], unique: str
) -> None:
    (first, first_cache), (_, second_cache) = members
    for cache in (first_cache, second_cache):
        await _wait_caching(cache, True)

    assert await first.cross("acme", "alice", "e1") == 2
    assert ("acme", "alice") in first_cache.forgotten
    assert ("acme", "alice") in second_cache.forgotten

    redis = Redis.from_url(services_env["LEDGER_STATE"])
    try:
        # A member that holds a lease but never answers (a hung process): no completion.
        now = int((await redis.time())[0])
        await redis.zadd(f"bar-{unique}:replicas", {"hung-replica": now + 60})
        with pytest.raises(BarrierError, match="hung-replica"):
            await first.cross("acme", "carol", "e2")
        # Once its lease has run out it is no longer waited for (it stopped caching by then).
        await redis.zadd(f"bar-{unique}:replicas", {"hung-replica": now - 1})
        assert await first.cross("acme", "carol", "e2") == 2
    finally:
        await redis.aclose()


async def test_a_member_that_cannot_renew_its_lease_caches_nothing() -> None:
    caches, cache = SubjectCaches(), Forgets()
    caches.register(cache)
    # A long lease: only the failed renewals can switch caching off within the wait.
    nowhere = RedisBarrier.from_url("redis://127.0.0.1:1/0", "x:", caches, heartbeat=0.1, lease=600)
    await nowhere.start()
    try:
        await _wait_caching(cache, False)
        assert not caches.caching
    finally:
        await nowhere.close()


async def test_a_member_frozen_for_half_its_lease_drops_everything_it_cached(
    services_env: dict[str, str], unique: str
) -> None:
    caches, cache = SubjectCaches(), Forgets()
    caches.register(cache)
    member = RedisBarrier.from_url(
        services_env["LEDGER_STATE"], f"frz-{unique}:", caches, heartbeat=0.1, lease=1.0
    )
    await member.start()
    try:
        await _wait_caching(cache, True)
        cache.switched.clear()
        time.sleep(0.8)  # noqa: ASYNC251 -- the whole process frozen (GC pause, stopped VM)
        async with asyncio.timeout(5):
            while not cache.switched or not cache.caching:
                await asyncio.sleep(0.02)
        assert cache.switched[0] is False  # everything dropped before caching again
    finally:
        await member.close()
