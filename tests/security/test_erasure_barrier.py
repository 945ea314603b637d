"""Erasure as the attacker sees it, on the embedded gateway with auth on.

The attackers: someone who copies the data directory after an erasure (the SQLite file, its
WAL and shared-memory files, the blob files, the `kek` file and its neighbours), the erased
subject's own client reading again within the key cache's lifetime, a holder of an old
sealed-state token, and another subject of the same tenant replaying that token. Each test
proves nothing of the erased subject opens or comes back, and says where it would have.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import MCPError

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.compliance.barrier import LocalBarrier, SubjectCaches
from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.consumers.compliance.export import export_subject
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS, ToolInvocation, ToolOutcome, structured_outcome
from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.cipher import DecryptionError, decrypt, new_key, wrap_associated
from mcp_ledger.crypto.kek import Kek, KekRing, parse_keks
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_sealer
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

TENANT = "acme"
MODE = "2026-07-28"  # the stateless era: the session is the Ledger-Session header


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return embedded_settings(tmp_path / "data", no_auth=False)


@pytest.fixture
async def embedded(settings: Settings) -> AsyncIterator[RunningGateway]:
    async with gateway(settings) as running_gateway:
        yield running_gateway


def _token(settings: Settings, subject: str, *roles: str) -> str:
    return good_token(settings, sub=subject, tenant=TENANT, roles=roles or ("data-analyst",))


async def _call(url: str, token: str, session: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with mcp_client(url, session=session, mode=MODE, token=token) as client:
        return structured(await client.call_tool(tool, arguments))


async def _session(url: str, token: str) -> str:
    async with mcp_client(url, mode=MODE, token=token) as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
    assert isinstance(session_id, str)
    return session_id


async def _erase(settings: Settings, url: str, subject: str) -> dict[str, Any]:
    """POST /admin/erasures as the tenant's data-protection officer (an admin)."""
    headers = {"Authorization": f"Bearer {_token(settings, 'dpo', 'admin')}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        answer = await http.post(f"{url.removesuffix('/mcp')}/admin/erasures", json={"subject": subject})
    assert answer.status_code == 200, answer.text
    record = answer.json()
    assert isinstance(record, dict)
    assert record["status"] == "completed"
    return record


def _wrapped_keys(database: Path, subject: str) -> list[tuple[str, str, bytes]]:
    """(key id, KEK id, wrapped bytes) of the subject's live keys, read from the raw file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as raw:
        rows = raw.execute(
            "SELECT key_id, kek_id, wrapped_key FROM subject_keys"
            " WHERE tenant = ? AND subject = ? AND wrapped_key IS NOT NULL",
            (TENANT, subject),
        ).fetchall()
    return [(str(key_id), str(kek_id), bytes(wrapped)) for key_id, kek_id, wrapped in rows]


def _files_holding(directory: Path, needle: bytes) -> list[str]:
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and needle in p.read_bytes()
    )


async def _export(settings: Settings, subject: str) -> dict[str, Any]:
    store = await open_event_store(settings.store_url)
    audit = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)
    sealer, keys = open_sealer(settings)
    try:
        return await export_subject(audit, store, EventMapper(sealer), TENANT, subject)
    finally:
        await keys.close()
        await audit.close()
        await store.close()


async def test_no_file_of_the_data_directory_holds_the_destroyed_wrapped_key_or_a_kek_that_opens_it(
    embedded: RunningGateway, settings: Settings
) -> None:
    alice = _token(settings, "alice")
    session = await _session(embedded.url, alice)
    await _call(embedded.url, alice, session, "note_set", {"key": "card", "value": "4111-1111"})
    bob = _token(settings, "bob")  # a subject who stays: their key must keep working
    bob_session = await _session(embedded.url, bob)
    await _call(embedded.url, bob, bob_session, "note_set", {"key": "k", "value": "bob's"})
    data_dir = settings.data_dir
    [(key_id, kek_id, wrapped)] = _wrapped_keys(data_dir / "ledger.db", "alice")
    assert _files_holding(data_dir, wrapped)  # the attacker's needle is really on disk…

    record = await _erase(settings, embedded.url, "alice")

    assert record["keys_destroyed"] == 1
    assert _files_holding(data_dir, wrapped) == []  # …and after the erasure in no file at all
    # Whatever copy escaped (a backup of ledger.db or its WAL) is useless with the KEK file of
    # the data directory: the KEK that wrapped it was retired by the erasure.
    keks = parse_keks((data_dir / "kek").read_text())
    assert kek_id not in {kek.kek_id for kek in keks}
    for kek in keks:
        with pytest.raises(DecryptionError):
            decrypt(kek.key, wrapped, wrap_associated(kek.kek_id, TENANT, "alice", key_id))
    assert record["purged"]["retired_keks"] >= 1
    found = await _call(embedded.url, bob, bob_session, "note_get", {"key": "k"})
    assert found["value"] == "bob's"  # the other subjects' keys were rewrapped, not lost


async def test_a_note_read_just_before_the_erasure_does_not_come_back_after_it(
    embedded: RunningGateway, settings: Settings
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    alice = _token(settings, "alice")
    session = await _session(embedded.url, alice)
    await _call(embedded.url, alice, session, "note_set", {"key": "secret", "value": marker})
    assert (await _call(embedded.url, alice, session, "note_get", {"key": "secret"}))["value"] == marker

    record = await _erase(settings, embedded.url, "alice")
    erased_at = asyncio.get_running_loop().time()
    async with mcp_client(embedded.url, session=session, mode=MODE, token=alice) as client:
        again = await client.call_tool("note_get", {"key": "secret"})

    assert asyncio.get_running_loop().time() - erased_at < 5  # inside the key cache's lifetime
    assert marker not in text_of(again) + repr(again.structured_content)
    assert record["purged"]["replica_caches"] == 1
    bundle = await _export(settings, "alice")
    assert marker not in repr(bundle)


async def test_sealed_state_from_before_the_erasure_is_refused_as_erased(
    embedded: RunningGateway, settings: Settings
) -> None:
    alice, mallory = _token(settings, "alice"), _token(settings, "mallory")
    session = await _session(embedded.url, alice)
    sealed = (await _call(embedded.url, alice, session, "state_seal", {"state": {"pin": "2468"}}))["sealed"]
    assert "2468" not in sealed
    mallory_session = await _session(embedded.url, mallory)
    async with mcp_client(embedded.url, session=mallory_session, mode=MODE, token=mallory) as client:
        stolen = await client.call_tool("state_open", {"sealed": sealed})
    assert stolen.is_error
    assert "2468" not in text_of(stolen)
    opened = await _call(embedded.url, alice, session, "state_open", {"sealed": sealed})
    assert opened["state"] == {"pin": "2468"}

    await _erase(settings, embedded.url, "alice")

    async with mcp_client(
        embedded.url, session=await _session(embedded.url, alice), mode=MODE, token=alice
    ) as c:
        after = await c.call_tool("state_open", {"sealed": sealed})
    assert after.is_error
    assert "erased" in text_of(after)
    assert "2468" not in text_of(after)


async def test_a_gateway_whose_kek_cannot_unwrap_the_stored_keys_says_so_everywhere(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    import base64

    first = settings.model_copy(update={"kek": base64.b64encode(new_key()).decode()})
    async with gateway(first) as running:
        alice = _token(first, "alice")
        session = await _session(running.url, alice)
        await _call(running.url, alice, session, "note_set", {"key": "k", "value": "v"})
    other = settings.model_copy(update={"kek": base64.b64encode(new_key()).decode()})
    caplog.set_level(logging.ERROR)
    async with gateway(other) as running:
        async with mcp_client(running.url, session=session, mode=MODE, token=alice) as client:
            with pytest.raises(MCPError) as refused:
                await client.call_tool("note_get", {"key": "k"})
        async with httpx.AsyncClient(timeout=30) as http:
            ready = await http.get(running.url.removesuffix("/mcp") + "/readyz")
    message = str(refused.value)
    assert "KEK" in message
    assert "LEDGER_KEK" in message
    assert "acme" in message
    assert "Internal server error" not in message
    assert ready.status_code == 503
    assert "LEDGER_KEK" in ready.json()["problems"]["keys"]
    assert any("LEDGER_KEK" in record.getMessage() for record in caplog.records)


async def test_a_call_that_read_the_note_before_the_shred_records_nothing_readable_after_it(
    tmp_path: Path,
) -> None:
    """The race: a note_get loads the session (the note opened) just before the key is
    destroyed and appends its answer just after. Its answer must not be sealed again under
    the key the subject gets next, or the export (and the caller) would read it back."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    store = await open_event_store(url)
    keys = CachingKeyStore(SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True))
    read, release = asyncio.Event(), asyncio.Event()

    async def note_get_across_the_shred(call: ToolInvocation) -> ToolOutcome:
        value = call.session.notes["secret"]  # opened before the shred
        read.set()
        await release.wait()
        return structured_outcome({"key": "secret", "found": True, "value": value})

    async def ignore(_events: object) -> None:
        return None

    runners = {**BUILTIN_RUNNERS, "note_get": note_get_across_the_shred}
    handler = CommandHandler(
        store, builtin_catalog(), runners, ignore, sealer=RecordSealer(keys), scopes=keys
    )
    caches = SubjectCaches()
    caches.register(keys)
    caches.register(handler.sessions)
    erasure = ErasureHandler(store, keys, [], ignore, barrier=LocalBarrier(caches))
    marker = f"marker-{uuid.uuid4().hex}"
    session_id = new_session_id()
    for tool, arguments in [("session_open", {}), ("note_set", {"key": "secret", "value": marker})]:
        await handler.handle(_alice(tool, session_id, arguments))
    try:
        racing = asyncio.create_task(handler.handle(_alice("note_get", session_id, {"key": "secret"})))
        await asyncio.wait_for(read.wait(), 10)
        await erasure.handle(EraseSubject(tenant=TENANT, subject="alice", requested_by="dpo"))
        release.set()
        answer = await asyncio.wait_for(racing, 10)
        fresh = RecordSealer(SqlKeyStore(create_store_engine(url), keys_ring(keys), owns_engine=True))
        [succeeded] = [e for e in answer.events if e.event_type == "ToolSucceeded"]
        opened = await fresh.open_event(
            succeeded.event_type, succeeded.data, succeeded.metadata, succeeded.stream_id
        )
        await fresh.keys.close()
    finally:
        await keys.close()
        await store.close()
    assert marker not in repr(opened)  # sealed under the destroyed key: it opens as erased
    assert opened["structured"] == {"$erased": True}


def _alice(tool: str, session_id: str, arguments: dict[str, Any]) -> CallTool:
    return CallTool(
        tenant=TENANT, subject="alice", session_id=session_id, tool_name=tool, arguments=arguments
    )


def keys_ring(keys: CachingKeyStore) -> KekRing:
    inner = keys.inner
    assert isinstance(inner, SqlKeyStore)
    return inner.ring
