"""The erasure proof on real services: a marker written as a subject's personal data through
MCP with a real access token (two API replicas and two worker processes, Kafka, PostgreSQL,
Redis), erased with `mcp-ledger erase`, is then found nowhere in the clear: not in any
PostgreSQL table, not under any of the stack's Redis keys, not in the Kafka log segments of
its topics, not in the blob store (the `blobs` table of PostgreSQL, sealed before and a
tombstone after); and nothing of the subject's events can be decrypted any more, nor their
blob's pointer read.
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


async def test_an_erased_subjects_marker_is_nowhere_in_the_clear_on_any_service(
    shared_distributed_stack: DistributedStack, unique: str
) -> None:
    stack = shared_distributed_stack
    marker = f"MARKER-{unique}-personal"
    tenant, subject, prefix = f"tenant-{unique}", f"subject-{unique}", stack.topic_prefix
    token = stack.token(tenant, subject, ("operator",))
    first, second = stack.urls[0], stack.urls[-1]
    session_id = await _open_session(first, token)
    async with mcp_client(second, session=session_id, token=token) as client:
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
    await _wait_for_marker_in_redis(stack, marker)  # the read model holds it in the clear, with a TTL
    segments = kafka_segments(prefix)
    assert segments, "no Kafka log segments found for the test's topics"
    kafka_bytes = b"".join(segment.read_bytes() for segment in segments)
    assert session_id.encode() in kafka_bytes  # the scan reads the right files…
    assert marker.encode() not in kafka_bytes  # …and they only ever held ciphertext
    assert await postgres_rows_holding(stack.store_url, marker) == {}

    erased = json.loads(
        await asyncio.to_thread(
            stack.cli, "erase", "--tenant", tenant, "--subject", subject, "--requested-by", "dpo"
        )
    )

    assert erased["keys_destroyed"] == 1
    assert erased["purged"]["session_views"] >= 1  # plus the sessions 2025-11-25 clients open at initialize
    assert (erased["purged"]["blobs"], erased["purged"]["plan_views"]) == (1, 1)
    assert "transport_sessions" in erased["purged"]
    assert await postgres_rows_holding(stack.store_url, marker) == {}
    redis_after = await redis_values(stack.state_url, stack.state_prefix)
    assert marker not in repr(redis_after)
    assert session_id not in repr(redis_after)
    assert not any(marker.encode() in segment.read_bytes() for segment in kafka_segments(prefix))
    await _nothing_of_the_subject_opens(stack, tenant, subject)
    assert not [proc.log.name for proc in stack.started if marker in proc.output()]  # nor in the logs
    # Last: coming back gives the subject a new key, and their old pointer reads as erased.
    async with mcp_client(first, session=session_id, token=token) as client:
        with pytest.raises(MCPError, match="was erased"):
            await client.read_resource(put["uri"])


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
