"""The erasure proof on real services: markers written as a subject's personal data through
MCP with a real access token (two API replicas and two worker processes, Kafka, PostgreSQL,
Redis): a note's value and key, a call's text, a blob's name and mime type, a plan's
parameters, condition literal and task id, a cancellation's reason. Erased with `mcp-ledger
erase`, none is then found in the clear: not in any PostgreSQL table, not under any of the
stack's Redis keys, not in the Kafka log segments of its topics, not in the blob store (the
`blobs` table of PostgreSQL, sealed before and a tombstone after), not in the processes' logs;
and nothing of the subject's events can be decrypted any more, nor their blob's pointer read.
"""

from __future__ import annotations

import asyncio
import json

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.crypto.kek import KekRing, parse_keks
from mcp_ledger.crypto.ports import KeyDestroyedError
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import is_sealed
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.ports import AuditQuery
from mcp_ledger.eventstore.sql import create_store_engine
from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack
from tests.support.scans import kafka_segments, postgres_rows_holding, redis_values

pytestmark = pytest.mark.integration


async def _wait_for_marker_in_redis(stack: DistributedStack, marker: str) -> None:
    async with asyncio.timeout(20):
        while marker not in repr(await redis_values(stack.state_url, stack.state_prefix)):
            await asyncio.sleep(0.05)


async def _open_session(url: str, token: str) -> str:
    async with mcp_client(url, mode="2026-07-28", token=token) as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
    assert isinstance(session_id, str)
    return session_id


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


async def _write_everything(first: str, second: str, token: str, markers: dict[str, str]) -> tuple[str, str]:
    """Every kind of personal data through MCP, the session opened on one replica and used on
    the other; returns the session id and the blob's pointer."""
    marker, key, mime = markers["value"], markers["note key"], f"text/{markers['mime type']}"
    session_id = await _open_session(first, token)
    async with mcp_client(second, session=session_id, token=token) as client:
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
    shared_distributed_stack: DistributedStack, unique: str
) -> None:
    stack = shared_distributed_stack
    markers = _markers(unique)
    marker = markers["value"]
    tenant, subject, prefix = f"tenant-{unique}", f"subject-{unique}", stack.topic_prefix
    token = stack.token(tenant, subject, ("operator",))
    first, second = stack.urls[0], stack.urls[-1]
    session_id, pointer = await _write_everything(first, second, token, markers)
    await _wait_for_marker_in_redis(stack, marker)  # the read model holds it in the clear, with a TTL
    segments = kafka_segments(prefix)
    assert segments, "no Kafka log segments found for the test's topics"
    kafka_bytes = b"".join(segment.read_bytes() for segment in segments)
    assert session_id.encode() in kafka_bytes  # the scan reads the right files…
    assert _found(kafka_bytes, markers) == []  # …and they only ever held ciphertext
    assert await _rows_holding_any(stack.store_url, markers) == {}

    erased = json.loads(
        await asyncio.to_thread(
            stack.cli, "erase", "--tenant", tenant, "--subject", subject, "--requested-by", "dpo"
        )
    )

    assert erased["keys_destroyed"] == 1
    assert erased["purged"]["session_views"] >= 1  # plus the sessions 2025-11-25 clients open at initialize
    assert (erased["purged"]["blobs"], erased["purged"]["plan_views"]) == (1, 1)
    assert "transport_sessions" in erased["purged"]
    assert await _rows_holding_any(stack.store_url, markers) == {}
    redis_after = await redis_values(stack.state_url, stack.state_prefix)
    assert _found(repr(redis_after), markers) == []
    assert session_id not in repr(redis_after)
    assert [_found(segment.read_bytes(), markers) for segment in kafka_segments(prefix)] == [
        [] for _ in kafka_segments(prefix)
    ]
    await _nothing_of_the_subject_opens(stack, tenant, subject)
    # nor in the processes' logs
    assert {proc.log.name: _found(proc.output(), markers) for proc in stack.started} == {
        proc.log.name: [] for proc in stack.started
    }
    # Last: coming back gives the subject a new key, and their old pointer reads as erased.
    async with mcp_client(first, session=session_id, token=token) as client:
        with pytest.raises(MCPError, match="was erased"):
            await client.read_resource(pointer)


async def _nothing_of_the_subject_opens(stack: DistributedStack, tenant: str, subject: str) -> None:
    ring = KekRing(parse_keks(stack.env["LEDGER_KEK"]))
    keys = SqlKeyStore(create_store_engine(stack.store_url), ring, owns_engine=True)
    audit = SqlAuditLog(create_store_engine(stack.store_url), owns_engine=True)
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
