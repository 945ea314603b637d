"""The erasure proof on real services: markers written as a subject's personal data through
MCP (API and worker processes, Kafka, PostgreSQL, Redis): a note's value and key, a call's
text, a blob's name and mime type, a plan's parameters, condition literal and task id, a
cancellation's reason. Erased with `mcp-ledger erase`, none is then found in the clear: not
in any PostgreSQL table, not under any of the test's Redis keys, not in the Kafka log segments
of the test's topics, not in the blob store (the `blobs` table of PostgreSQL, sealed before
and a tombstone after); and nothing of the subject's events can be decrypted any more, nor
their blob's pointer read.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
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
    services = Path(os.environ.get("LEDGER_SERVICES_DIR", Path.home() / ".cache" / "mcp-ledger" / "services"))
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


def _markers(unique: str) -> dict[str, str]:
    """One marker per kind of personal data the test writes, each findable on its own."""
    return {
        "value": f"MARKER-{unique}-personal",
        "note key": f"NOTEKEY-{unique}",
        "mime type": f"MIMETYPE-{unique}",
        "condition literal": f"LITERAL-{unique}",
        "task id": f"task_{unique}",
        "cancel reason": f"REASON-{unique}",
    }


def _plan(markers: dict[str, str]) -> dict[str, object]:
    """A plan whose second task's condition compares with a literal and is false at run time."""
    condition = f"a.output.text == '{markers['condition literal']}'"
    return {
        "plan_id": "p1",
        "tasks": [
            {"id": "a", "tool_name": "echo", "parameters": {"text": markers["value"]}},
            {
                "id": markers["task id"],
                "tool_name": "echo",
                "parameters": {"text": "unused"},
                "dependencies": ["a"],
                "condition": condition,
            },
        ],
    }


async def _write_everything(url: str, markers: dict[str, str]) -> tuple[str, str]:
    """Every kind of personal data through MCP; returns the session id and the blob's pointer."""
    marker, key, mime = markers["value"], markers["note key"], f"text/{markers['mime type']}"
    session_id = await open_session(url)
    async with mcp_client(url, session=session_id) as client:
        assert structured(await client.call_tool("note_set", {"key": key, "value": marker}))
        assert structured(await client.call_tool("echo", {"text": marker}))["text"] == marker
        put = structured(
            await client.call_tool("blob_put", {"name": f"doc {marker}", "text": marker, "mime_type": mime})
        )
        read = (await client.read_resource(put["uri"])).contents[0]
        assert isinstance(read, types.TextResourceContents)
        assert (read.text, read.mime_type) == (marker, mime)
        structured(await client.call_tool("create_plan", {"plan": _plan(markers), "execute": True}))
        status = structured(await client.call_tool("plan_status", {"plan_id": "p1", "wait_seconds": 30}))
        assert status["tasks"]["a"]["output"] == {"text": marker}  # from the Redis plan view
        assert status["tasks"][markers["task id"]]["status"] == "skipped"  # the condition was evaluated
        await client.call_tool("cancel_plan", {"plan_id": "p1", "reason": markers["cancel reason"]})
    return session_id, str(put["uri"])


def _found(haystack: str | bytes, markers: dict[str, str]) -> list[str]:
    text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
    return sorted(what for what, marker in markers.items() if marker in text)


async def _rows_holding_any(url: str, markers: dict[str, str]) -> dict[str, dict[str, int]]:
    found = {what: await postgres_rows_holding(url, marker) for what, marker in markers.items()}
    return {what: rows for what, rows in found.items() if rows}


async def test_an_erased_subjects_marker_is_nowhere_in_the_clear_on_any_service(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path, unique: str
) -> None:
    markers = _markers(unique)
    marker = markers["value"]
    tenant, subject, prefix = (
        env["LEDGER_LOCAL_TENANT"],
        env["LEDGER_LOCAL_SUBJECT"],
        env["LEDGER_TOPIC_PREFIX"],
    )
    start_ledger(procs, env, tmp_path, "worker")
    api = start_ledger(procs, env, tmp_path, "api")
    api.wait_healthy()
    session_id, pointer = await _write_everything(api.url, markers)
    await _wait_for_marker_in_redis(env, marker)  # the read model holds it in the clear, with a TTL
    segments = kafka_segments(prefix)
    assert segments, "no Kafka log segments found for the test's topics"
    kafka_bytes = b"".join(segment.read_bytes() for segment in segments)
    assert session_id.encode() in kafka_bytes  # the scan reads the right files…
    assert _found(kafka_bytes, markers) == []  # …and they only ever held ciphertext
    assert await _rows_holding_any(env["LEDGER_STORE"], markers) == {}

    erased = json.loads(
        run_ledger(env, "erase", "--tenant", tenant, "--subject", subject, "--requested-by", "dpo")
    )

    assert erased["keys_destroyed"] == 1
    assert erased["purged"]["session_views"] >= 1  # plus the sessions 2025-11-25 clients open at initialize
    assert (erased["purged"]["blobs"], erased["purged"]["plan_views"]) == (1, 1)
    assert "transport_sessions" in erased["purged"]
    assert await _rows_holding_any(env["LEDGER_STORE"], markers) == {}
    redis_after = await redis_values(env["LEDGER_STATE"], env["LEDGER_STATE_PREFIX"])
    assert _found(repr(redis_after), markers) == []
    assert session_id not in repr(redis_after)
    assert [_found(segment.read_bytes(), markers) for segment in kafka_segments(prefix)] == [
        [] for _ in kafka_segments(prefix)
    ]
    await _nothing_of_the_subject_opens(env, tenant, subject)
    # nor in the processes' logs
    assert {proc.log.name: _found(proc.output(), markers) for proc in procs} == {
        proc.log.name: [] for proc in procs
    }
    # Last: coming back gives the subject a new key, and their old pointer reads as erased.
    async with mcp_client(api.url, session=session_id) as client:
        with pytest.raises(MCPError, match="was erased"):
            await client.read_resource(pointer)


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
