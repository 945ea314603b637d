"""The erasure proof on real services: a marker written as a subject's personal data through
MCP (API and worker processes, Kafka, PostgreSQL, Redis), erased with `mcp-ledger erase`, is
then found nowhere in the clear: not in any PostgreSQL table, not under any of the test's
Redis keys, not in the Kafka log segments of the test's topics, not in the blob store (the
`blobs` table of PostgreSQL, sealed before and a tombstone after); and nothing of the
subject's events can be decrypted any more, nor their blob's pointer read.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from redis.asyncio import Redis
from sqlalchemy import text

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import KekRing, parse_keks
from mcp_ledger.crypto.ports import KeyDestroyedError
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import is_sealed
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.ports import AuditQuery
from mcp_ledger.eventstore.sql import create_store_engine
from tests.support.clients import mcp_client, open_session, structured
from tests.support.environment import services_script_env
from tests.support.processes import (
    LedgerProcess,
    isolated_env,
    ledger_processes,
    run_ledger,
    start_ledger,
)

pytestmark = pytest.mark.integration

TOPICS = ("ledger.commands", "ledger.events", "ledger.compliance")


def kafka_log_dirs() -> list[Path]:
    """Where the services' Kafka keeps its partitions (log.dirs of its server.properties)."""
    default = Path.home() / ".cache" / "mcp-ledger" / "services"
    services = Path(services_script_env().get("LEDGER_SERVICES_DIR", default))
    for line in (services / "kafka" / "server.properties").read_text().splitlines():
        if line.startswith("log.dirs="):
            return [Path(entry) for entry in line.removeprefix("log.dirs=").split(",")]
    raise AssertionError("no log.dirs in the Kafka server.properties")


def kafka_segments(prefix: str) -> list[Path]:
    """The log segment files of this test's topics."""
    return [
        segment
        for directory in kafka_log_dirs()
        for topic in TOPICS
        for segment in directory.glob(f"{prefix}{topic}-*/*.log")
    ]


async def postgres_rows_holding(url: str, needle: str) -> dict[str, int]:
    """Rows of every table of the database whose text form holds `needle`, per table."""
    engine = create_store_engine(url)
    found: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            names = (
                await conn.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
                )
            ).scalars()
            for name in list(names):
                hits = await conn.scalar(
                    text(f'SELECT count(*) FROM "{name}" AS t WHERE t::text LIKE :pattern'),
                    {"pattern": f"%{needle}%"},
                )
                if hits:
                    found[name] = int(hits)
    finally:
        await engine.dispose()
    return found


async def redis_values(url: str, prefix: str) -> dict[str, str]:
    """Every key under `prefix` with its value(s) as text."""
    client = Redis.from_url(url)
    values: dict[str, str] = {}
    try:
        async for raw in client.scan_iter(match=f"{prefix}*", count=500):
            key = raw.decode()
            found_type = await client.type(key)
            kind = found_type.decode() if isinstance(found_type, bytes) else str(found_type)
            if kind == "hash":
                values[key] = repr(await client.hgetall(key))
            elif kind == "set":
                values[key] = repr(await client.smembers(key))
            elif kind == "string":
                values[key] = repr(await client.get(key))
            else:
                values[key] = f"<{kind}>"
    finally:
        await client.aclose()
    return values


@pytest.fixture
def env(services_env: dict[str, str], unique: str) -> dict[str, str]:
    return {
        **isolated_env(services_env, unique, topics="p", keys="proof"),
        "LEDGER_LOCAL_SUBJECT": f"subject-{unique}",
        "LEDGER_KEK": base64.b64encode(new_key()).decode(),
    }


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    run_ledger(env, "migrate")
    with ledger_processes(env, tmp_path) as started:
        yield started


async def _wait_for_marker_in_redis(env: dict[str, str], marker: str) -> None:
    async with asyncio.timeout(20):
        while marker not in repr(await redis_values(env["LEDGER_STATE"], env["LEDGER_STATE_PREFIX"])):
            await asyncio.sleep(0.05)


async def test_an_erased_subjects_marker_is_nowhere_in_the_clear_on_any_service(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str
) -> None:
    marker = f"MARKER-{unique}-personal"
    tenant, subject, prefix = (
        env["LEDGER_LOCAL_TENANT"],
        env["LEDGER_LOCAL_SUBJECT"],
        env["LEDGER_TOPIC_PREFIX"],
    )
    start_ledger(procs, env, tmp_path, "worker")
    api = start_ledger(procs, env, tmp_path, "api")
    api.wait_healthy()
    session_id = await open_session(api.url)
    async with mcp_client(api.url, session=session_id) as client:
        assert structured(await client.call_tool("note_set", {"key": "secret", "value": marker}))
        assert structured(await client.call_tool("echo", {"text": marker}))["text"] == marker
        put = structured(await client.call_tool("blob_put", {"name": f"doc {marker}", "text": marker}))
        read = (await client.read_resource(put["uri"])).contents[0]
        assert isinstance(read, types.TextResourceContents)
        assert read.text == marker
        plan = {"plan_id": "p1", "tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": marker}}]}
        await client.call_tool("create_plan", {"plan": plan, "execute": True})
        status = structured(await client.call_tool("plan_status", {"plan_id": "p1", "wait_seconds": 30}))
        assert status["tasks"]["a"]["output"] == {"text": marker}  # from the Redis plan view
    await _wait_for_marker_in_redis(env, marker)  # the read model holds it in the clear, with a TTL
    segments = kafka_segments(prefix)
    assert segments, "no Kafka log segments found for the test's topics"
    kafka_bytes = b"".join(segment.read_bytes() for segment in segments)
    assert session_id.encode() in kafka_bytes  # the scan reads the right files…
    assert marker.encode() not in kafka_bytes  # …and they only ever held ciphertext
    assert await postgres_rows_holding(env["LEDGER_STORE"], marker) == {}

    erased = json.loads(
        run_ledger(env, "erase", "--tenant", tenant, "--subject", subject, "--requested-by", "dpo")
    )

    assert erased["keys_destroyed"] == 1
    assert erased["purged"]["session_views"] >= 1  # plus the sessions 2025-11-25 clients open at initialize
    assert (erased["purged"]["blobs"], erased["purged"]["plan_views"]) == (1, 1)
    assert "transport_sessions" in erased["purged"]
    assert await postgres_rows_holding(env["LEDGER_STORE"], marker) == {}
    redis_after = await redis_values(env["LEDGER_STATE"], env["LEDGER_STATE_PREFIX"])
    assert marker not in repr(redis_after)
    assert session_id not in repr(redis_after)
    assert not any(marker.encode() in segment.read_bytes() for segment in kafka_segments(prefix))
    await _nothing_of_the_subject_opens(env, tenant, subject)
    assert not [proc.log.name for proc in procs if marker in proc.output()]  # nor in the processes' logs
    # Last: coming back gives the subject a new key, and their old pointer reads as erased.
    async with mcp_client(api.url, session=session_id) as client:
        with pytest.raises(MCPError, match="was erased"):
            await client.read_resource(put["uri"])


async def _nothing_of_the_subject_opens(env: dict[str, str], tenant: str, subject: str) -> None:
    ring = KekRing(parse_keks(env["LEDGER_KEK"]))
    keys = SqlKeyStore(create_store_engine(env["LEDGER_STORE"]), ring, owns_engine=True)
    audit = SqlAuditLog(create_store_engine(env["LEDGER_STORE"]), owns_engine=True)
    try:
        history = await audit.query(AuditQuery(tenant=tenant, subject=subject))
        sealed = [(e, v) for e in history for v in e.data.values() if is_sealed(v)]
        assert len(sealed) >= 5  # the calls' arguments, the note and the outputs
        for event, value in sealed:
            with pytest.raises(KeyDestroyedError):
                await keys.key(tenant, subject, value["kid"])
            opened = await RecordSealer(keys).open_event(
                event.event_type, event.data, event.metadata, event.stream_id
            )
            assert not any(is_sealed(v) for v in opened.values())
        assert "ErasureCompleted" in [e.event_type for e in history]
    finally:
        await audit.close()
        await keys.close()
