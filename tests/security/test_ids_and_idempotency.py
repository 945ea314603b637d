"""Attacks on ids and idempotency against the embedded gateway with auth on (findings 1, 13).

The attackers hold real tokens and speak through the official MCP client: carol@globex
replays alice@acme's plan to read her notes or to plant a value alice's identical plan would
return, and keeps what she got after alice is erased; bob@acme squats alice's plan id and
probes it. Each test proves the victim's data reached nobody else, in the answers, in the
event store opened with every key, and in the files of the data directory.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_sealer
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

DAILY_NOTES: dict[str, Any] = {"plan_id": "daily-notes", "tasks": [{"id": "read", "tool_name": "note_list"}]}
"""The plan exactly as the attack ran it."""
ANALYST = ("data-analyst",)
HASH = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running_gateway:
        yield running_gateway


def _token(gw: RunningGateway, sub: str, tenant: str, roles: tuple[str, ...] = ANALYST) -> str:
    return good_token(gw.runtime.settings, sub=sub, tenant=tenant, roles=roles)


async def _notes_then_plan(
    gw: RunningGateway, sub: str, tenant: str, notes: dict[str, str], plan: dict[str, Any] = DAILY_NOTES
) -> dict[str, Any]:
    """In one session of sub@tenant: write the notes, run the plan, return its final status."""
    async with mcp_client(gw.url, token=_token(gw, sub, tenant)) as client:
        for key, value in notes.items():
            assert not (await client.call_tool("note_set", {"key": key, "value": value})).is_error
        created = await client.call_tool("create_plan", {"plan": plan})
        assert not created.is_error, text_of(created)
        return structured(
            await client.call_tool("execute_plan", {"plan_id": plan["plan_id"], "wait_seconds": 10})
        )


async def _opened_history(settings: Settings) -> list[StoredEvent]:
    """Every stored event with its personal fields opened by every key still alive."""
    store = await open_event_store(settings.store_url)
    sealer, keys = open_sealer(settings)
    try:
        mapper = EventMapper(sealer)
        return [await mapper.open(event) for event in await store.read_all(limit=100_000)]
    finally:
        await keys.close()
        await store.close()


def _files_holding(directory: Path, marker: bytes) -> list[str]:
    return [str(path) for path in directory.rglob("*") if path.is_file() and marker in path.read_bytes()]


def _note_list_calls(history: list[StoredEvent]) -> list[tuple[str, str]]:
    """(tenant, subject) of every note_list call that ran."""
    return [
        (str(event.metadata["tenant"]), str(event.metadata["subject"]))
        for event in history
        if event.event_type == "ToolCalled" and event.data.get("tool_name") == "note_list"
    ]


async def test_another_tenants_identical_plan_reads_nothing_of_the_first_tenants_notes(
    secured: RunningGateway,
) -> None:
    secret = f"alice-secret-{uuid.uuid4().hex}"
    alice = await _notes_then_plan(secured, "alice", "acme", {"diary": secret})
    carol = await _notes_then_plan(secured, "carol", "globex", {})

    assert alice["tasks"]["read"]["output"] == {"notes": {"diary": secret}}
    assert carol["status"] == "succeeded"
    assert carol["tasks"]["read"]["output"] == {"notes": {}}
    history = await _opened_history(secured.runtime.settings)
    # carol's task ran in her own session; alice's session saw exactly her own one call
    assert sorted(_note_list_calls(history)) == [("acme", "alice"), ("globex", "carol")]
    assert [e.stream_id for e in history if secret in repr(e.data)] == [
        e.stream_id for e in history if secret in repr(e.data) and e.metadata.get("tenant") == "acme"
    ]


async def test_a_value_planted_by_another_tenant_never_comes_back_from_the_victims_plan(
    secured: RunningGateway,
) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    carol = await _notes_then_plan(secured, "carol", "globex", {"diary": planted})
    alice = await _notes_then_plan(secured, "alice", "acme", {"todo": "ship it"})

    assert carol["tasks"]["read"]["output"] == {"notes": {"diary": planted}}
    assert alice["tasks"]["read"]["output"] == {"notes": {"todo": "ship it"}}
    history = await _opened_history(secured.runtime.settings)
    assert all(event.metadata.get("tenant") == "globex" for event in history if planted in repr(event.data))


async def test_nothing_of_an_erased_subject_survives_in_another_tenants_replayed_plan(
    secured: RunningGateway, tmp_path: Path
) -> None:
    secret = f"alice-secret-{uuid.uuid4().hex}"
    await _notes_then_plan(secured, "alice", "acme", {"diary": secret})
    await _notes_then_plan(secured, "carol", "globex", {})

    admin = _token(secured, "root", "acme", roles=("admin",))
    async with httpx.AsyncClient(timeout=30) as http:
        erased = await http.post(
            secured.url.removesuffix("/mcp") + "/admin/erasures",
            json={"subject": "alice"},
            headers={"authorization": f"Bearer {admin}"},
        )
    assert erased.status_code == 200, erased.text
    async with mcp_client(secured.url, token=_token(secured, "carol", "globex")) as client:
        status = structured(await client.call_tool("plan_status", {"plan_id": "daily-notes"}))
    assert secret not in repr(status)
    assert secret not in repr([event.data for event in await _opened_history(secured.runtime.settings)])
    assert _files_holding(tmp_path, secret.encode()) == []


async def test_a_plan_id_of_another_subject_of_the_same_tenant_can_be_reused_and_stays_apart(
    secured: RunningGateway,
) -> None:
    def report(text: str) -> dict[str, Any]:
        return {
            "plan_id": "report",
            "tasks": [{"id": "say", "tool_name": "echo", "parameters": {"text": text}}],
        }

    alice = await _notes_then_plan(secured, "alice", "acme", {}, report("alice's report"))
    bob = await _notes_then_plan(secured, "bob", "acme", {}, report("bob's report"))

    assert alice["tasks"]["say"]["output"] == {"text": "alice's report"}
    assert bob["tasks"]["say"]["output"] == {"text": "bob's report"}
    async with mcp_client(secured.url, token=_token(secured, "alice", "acme")) as client:
        again = structured(await client.call_tool("plan_status", {"plan_id": "report"}))
    assert (again["plan_hash"], again["tasks"]["say"]["output"]) == (
        alice["plan_hash"],
        {"text": "alice's report"},
    )


PROBES: list[tuple[str, dict[str, Any]]] = [
    ("plan_status", {}),
    ("execute_plan", {}),
    ("cancel_plan", {"reason": "probe"}),
    ("replan_plan", {}),
    ("create_plan", {"plan": {"tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": "x"}}]}}),
]


@pytest.mark.parametrize(("tool", "extra"), PROBES, ids=[name for name, _ in PROBES])
async def test_another_subjects_plan_id_answers_exactly_like_an_id_nobody_used(
    secured: RunningGateway, tool: str, extra: dict[str, Any]
) -> None:
    hidden = "alice-quarterly-close"
    async with mcp_client(secured.url, token=_token(secured, "alice", "acme")) as client:
        plan = {"plan_id": hidden, "tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": "x"}}]}
        assert not (await client.call_tool("create_plan", {"plan": plan})).is_error

    answers = []
    async with mcp_client(secured.url, token=_token(secured, "bob", "acme")) as client:
        for plan_id in (hidden, "never-used-by-anyone"):
            arguments = {**extra, "plan_id": plan_id}
            if tool == "create_plan":
                arguments = {"plan": {**extra["plan"], "plan_id": plan_id}}
            result = await client.call_tool(tool, arguments)
            # The plan's hash covers its id: only what the id changes is masked.
            answer = HASH.sub("sha256:H", text_of(result).replace(plan_id, "ID"))
            answers.append((result.is_error, answer))

    assert answers[0] == answers[1]
    async with mcp_client(secured.url, token=_token(secured, "alice", "acme")) as client:
        mine = structured(await client.call_tool("plan_status", {"plan_id": hidden}))
    assert mine["status"] == "accepted"  # bob neither started nor cancelled it
