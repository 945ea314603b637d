"""Isolation through MCP with real tokens, on the embedded and the distributed stack.

Two tenants (acme, globex) and two subjects of acme: alice, and bob, a tenant admin. carol
is an admin of globex; "twin" is a subject called alice in globex (the same `sub` in another
tenant). Each behaviour is one body of assertions run on both stacks; on the distributed one
the attacker goes through the other API replica. Every attack proves that it got nothing,
that nothing ran for it, and that the victim's data is unchanged.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_ledger.domain.streams import session_stream
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.ports import AuditQuery, StoredEvent
from mcp_ledger.eventstore.sql import create_store_engine
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, structured, text_of
from tests.support.issuer import TokenIssuer
from tests.support.pet_service import PetService, count_words_tool, pet_service
from tests.support.stacks import Stack, erase_as_admin

LIFECYCLE = frozenset({"session_open", "session_close"})


@dataclass(frozen=True)
class Person:
    tenant: str
    subject: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Cast:
    alice: Person
    bob: Person
    carol: Person
    twin: Person
    acme_auditor: Person
    globex_auditor: Person

    def attackers_of_alice(self) -> tuple[Person, ...]:
        """Another subject of her tenant (an admin), another tenant's admin, her namesake."""
        return (self.bob, self.carol, self.twin)


@pytest.fixture
def cast(tenant_names: dict[str, str]) -> Cast:
    acme, globex = tenant_names["acme"], tenant_names["globex"]
    return Cast(
        alice=Person(acme, "alice", ("operator",)),
        bob=Person(acme, "bob", ("admin",)),
        carol=Person(globex, "carol", ("admin",)),
        twin=Person(globex, "alice", ("admin",)),
        acme_auditor=Person(acme, "audrey", ("auditor",)),
        globex_auditor=Person(globex, "gus", ("auditor",)),
    )


def bearer(stack: Stack, who: Person) -> str:
    return stack.token(who.tenant, who.subject, who.roles)


@asynccontextmanager
async def as_(
    stack: Stack, who: Person, *, session: str | None = None, replica: int = 0, mode: str = "legacy"
) -> AsyncIterator[Client]:
    """An MCP client of `who` through one API replica (attackers take the last one)."""
    url = stack.urls[replica]
    async with mcp_client(url, session=session, mode=mode, token=bearer(stack, who)) as client:
        yield client


async def open_session(stack: Stack, who: Person) -> str:
    async with as_(stack, who, mode="2026-07-28") as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
    assert isinstance(session_id, str)
    return session_id


async def recorded(stack: Stack, who: Person) -> list[StoredEvent]:
    """Every event recorded for this subject of this tenant."""
    audit = SqlAuditLog(create_store_engine(stack.store_url), owns_engine=True)
    try:
        return await audit.query(AuditQuery(tenant=who.tenant, subject=who.subject, limit=100_000))
    finally:
        await audit.close()


async def runs(stack: Stack, who: Person) -> list[str]:
    """The tools that ran successfully for this subject (session lifecycle aside)."""
    return [
        str(e.data.get("tool_name"))
        for e in await recorded(stack, who)
        if e.event_type == "ToolSucceeded" and e.data.get("tool_name") not in LIFECYCLE
    ]


async def stream_events(stack: Stack, who: Person, stream_id: str) -> list[str]:
    return [e.event_type for e in await recorded(stack, who) if e.stream_id == stream_id]


def resource_text(result: types.ReadResourceResult) -> str:
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    return content.text


# ------------------------------------------------------------------------------------- sessions
async def _stream_status(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    """The status of a GET stream, without reading a body that may never end."""
    async with http.stream("GET", url, headers={**headers, "accept": "text/event-stream"}) as response:
        return response.status_code


async def test_a_session_is_unusable_and_unreadable_by_anyone_but_its_subject(
    stack: Stack, cast: Cast
) -> None:
    session_id = await open_session(stack, cast.alice)
    async with as_(stack, cast.alice, session=session_id) as client:
        structured(await client.call_tool("note_set", {"key": "k", "value": "alice-note"}))
    before = await stream_events(stack, cast.alice, session_stream(cast.alice.tenant, session_id))
    for attacker in cast.attackers_of_alice():
        ran_before = await runs(stack, attacker)
        async with as_(stack, attacker, session=session_id, replica=-1) as client:
            read = await client.call_tool("note_get", {"key": "k"})
            written = await client.call_tool("note_set", {"key": "k", "value": "overwritten"})
            deleted = await client.call_tool("note_delete", {"key": "k"})
            closed = await client.call_tool("session_close", {})
            with pytest.raises(MCPError, match="unknown resource"):
                await client.read_resource(f"ledger://sessions/{session_id}")
            listed = (await client.list_resources()).resources
        answers = {text_of(answer) for answer in (read, written, deleted, closed)}
        assert answers == {"unknown_session: unknown session"}, (attacker, answers)
        assert session_id not in json.dumps([r.model_dump(mode="json") for r in listed])
        assert await runs(stack, attacker) == ran_before, attacker
    assert await stream_events(stack, cast.alice, session_stream(cast.alice.tenant, session_id)) == before
    async with as_(stack, cast.alice, session=session_id) as client:
        assert structured(await client.call_tool("note_get", {"key": "k"}))["value"] == "alice-note"


async def test_an_mcp_session_id_answers_404_to_everyone_but_its_subject_and_survives_them(
    stack: Stack, cast: Cast
) -> None:
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    echo = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "attacker"}},
    }

    def headers(who: Person, session_id: str | None = None) -> dict[str, str]:
        found = {**JSON_RPC_HEADERS, "authorization": f"Bearer {bearer(stack, who)}"}
        return found | ({"mcp-session-id": session_id} if session_id else {})

    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(stack.urls[0], json=INITIALIZE, headers=headers(cast.alice))
        session_id = opened.headers["mcp-session-id"]
        answers = []
        for attacker in cast.attackers_of_alice():
            ran_before = await runs(stack, attacker)
            on_session = headers(attacker, session_id)
            answers += [
                (await http.post(stack.urls[-1], json=ping, headers=on_session)).status_code,
                (await http.post(stack.urls[-1], json=echo, headers=on_session)).status_code,
                await _stream_status(http, stack.urls[-1], on_session),
                (await http.delete(stack.urls[-1], headers=on_session)).status_code,
            ]
            assert await runs(stack, attacker) == ran_before, attacker
        own = await http.post(stack.urls[-1], json=ping, headers=headers(cast.alice, session_id))
    assert opened.status_code == 200
    assert answers == [404] * len(answers)
    assert own.status_code == 200  # no attacker's DELETE ended it


async def test_every_replica_refuses_a_request_without_a_token_or_with_a_foreign_issuers(
    stack: Stack, cast: Cast
) -> None:
    stranger = TokenIssuer(issuer=stack.issuer.issuer, audience=stack.issuer.audience, kid=stack.issuer.kid)
    forged = stranger.token(cast.alice.tenant, cast.alice.subject, ("admin",))
    async with httpx.AsyncClient(timeout=30) as http:
        for url in stack.urls:
            anonymous = await http.post(url, json=INITIALIZE, headers=JSON_RPC_HEADERS)
            foreign = await http.post(
                url, json=INITIALIZE, headers={**JSON_RPC_HEADERS, "authorization": f"Bearer {forged}"}
            )
            own = await http.post(
                url,
                json=INITIALIZE,
                headers={**JSON_RPC_HEADERS, "authorization": f"Bearer {bearer(stack, cast.alice)}"},
            )
            assert (anonymous.status_code, foreign.status_code, own.status_code) == (401, 401, 200), url
    assert await runs(stack, cast.alice) == []


# ---------------------------------------------------------------------------------------- notes
async def test_notes_under_the_same_key_never_cross_subjects_or_tenants(stack: Stack, cast: Cast) -> None:
    people = (cast.alice, cast.bob, cast.carol, cast.twin)
    sessions = {who: await open_session(stack, who) for who in people}
    for who in people:
        async with as_(stack, who, session=sessions[who]) as client:
            structured(
                await client.call_tool("note_set", {"key": "k", "value": f"{who.tenant}/{who.subject}"})
            )
    for index, who in enumerate(people):
        async with as_(stack, who, session=sessions[who], replica=index % len(stack.urls)) as client:
            got = structured(await client.call_tool("note_get", {"key": "k"}))
            listed = structured(await client.call_tool("note_list", {}))
            resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert got["value"] == f"{who.tenant}/{who.subject}"
        assert listed == {"notes": {"k": f"{who.tenant}/{who.subject}"}}
        others = {f"ledger://sessions/{sid}" for person, sid in sessions.items() if person != who}
        assert f"ledger://sessions/{sessions[who]}" in resources
        assert not resources & others, who


# ---------------------------------------------------------------------------------------- plans
def _note_plan(plan_id: str = "report") -> dict[str, object]:
    """One task reading the note "k" of the plan's session: its output is whose plan ran."""
    return {
        "plan_id": plan_id,
        "tasks": [{"id": "read", "tool_name": "note_get", "parameters": {"key": "k"}}],
    }


def _secret(who: Person) -> str:
    return f"note of {who.subject} in {who.tenant}"


async def _run_note_plan(stack: Stack, who: Person, replica: int = 0) -> dict[str, object]:
    """`who` keeps a note in a new session and runs the same plan there; its final status."""
    session_id = await open_session(stack, who)
    async with as_(stack, who, session=session_id, replica=replica) as client:
        await client.call_tool("note_set", {"key": "k", "value": _secret(who)})
        created = await client.call_tool("create_plan", {"plan": _note_plan(), "execute": True})
        if created.is_error:
            return {"status": text_of(created)}
        plan_id = structured(created)["plan_id"]
        status = await client.call_tool("plan_status", {"plan_id": plan_id, "wait_seconds": 30})
    return structured(status)


def _read_output(status: dict[str, object]) -> object:
    tasks = status.get("tasks")
    assert isinstance(tasks, dict), status
    return tasks["read"].get("output")


async def test_the_same_plan_in_two_tenants_runs_for_each_on_its_own_data(stack: Stack, cast: Cast) -> None:
    first = await _run_note_plan(stack, cast.alice)
    second = await _run_note_plan(stack, cast.twin, replica=-1)
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert _read_output(first) == {"key": "k", "found": True, "value": _secret(cast.alice)}
    assert _read_output(second) == {"key": "k", "found": True, "value": _secret(cast.twin)}
    assert (await runs(stack, cast.twin)).count("note_get") == 1  # its task ran, for it


async def test_the_same_plan_id_of_two_subjects_of_one_tenant_is_each_ones_own(
    stack: Stack, cast: Cast
) -> None:
    first = await _run_note_plan(stack, cast.alice)
    second = await _run_note_plan(stack, cast.bob, replica=-1)
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert _read_output(first) == {"key": "k", "found": True, "value": _secret(cast.alice)}
    assert _read_output(second) == {"key": "k", "found": True, "value": _secret(cast.bob)}


async def test_a_foreign_plan_id_answers_exactly_like_an_unknown_one_and_changes_nothing(
    stack: Stack, cast: Cast
) -> None:
    plan = {
        "plan_id": "steps",
        "mode": "reactive",
        "tasks": [
            {"id": "one", "tool_name": "echo", "parameters": {"text": "1"}},
            {"id": "two", "tool_name": "echo", "parameters": {"text": "2"}, "dependencies": ["one"]},
        ],
    }
    async with as_(stack, cast.alice, mode="2026-07-28") as client:
        created = structured(await client.call_tool("create_plan", {"plan": plan, "execute": True}))
        plan_id = created["plan_id"]
        paused = structured(await client.call_tool("plan_status", {"plan_id": plan_id, "wait_seconds": 30}))
    assert paused["status"] == "paused"
    alice_before = len(await recorded(stack, cast.alice))
    for attacker in cast.attackers_of_alice():
        async with as_(stack, attacker, replica=-1, mode="2026-07-28") as client:
            for tool, extra in (("plan_status", {}), ("execute_plan", {}), ("cancel_plan", {"reason": "x"})):
                foreign = await client.call_tool(tool, {"plan_id": plan_id, **extra})
                unknown = await client.call_tool(tool, {"plan_id": "never-made", **extra})
                assert (foreign.is_error, text_of(foreign)) == (unknown.is_error, text_of(unknown)), tool
                assert foreign.is_error, (attacker, tool)
    async with as_(stack, cast.alice, mode="2026-07-28") as client:
        after = structured(await client.call_tool("plan_status", {"plan_id": plan_id}))
    assert after == paused
    assert len(await recorded(stack, cast.alice)) == alice_before


# -------------------------------------------------------------------------------- blobs, pipelines
async def _pointer(client: Client, text: str, *, one_time: bool = False) -> str:
    arguments = {"name": "memo.txt", "text": text, "one_time": one_time}
    uri = structured(await client.call_tool("blob_put", arguments))["uri"]
    assert isinstance(uri, str)
    return uri


async def _read_refusal(client: Client, uri: str) -> str:
    try:
        result = await client.read_resource(uri)
    except MCPError as error:
        return str(error)
    return f"read: {result.model_dump_json()}"


async def test_a_blob_pointer_reads_in_its_subjects_session_only_and_a_foreign_read_burns_nothing(
    stack: Stack, cast: Cast
) -> None:
    marker = f"memo-{uuid.uuid4().hex}"
    session_id = await open_session(stack, cast.alice)
    async with as_(stack, cast.alice, session=session_id) as client:
        uri, once = await _pointer(client, marker), await _pointer(client, marker, one_time=True)
    readers = [(who, session) for who in cast.attackers_of_alice() for session in (session_id, None)]
    readers.append((cast.alice, await open_session(stack, cast.alice)))  # her other session
    refusals = []
    for who, session in readers:
        async with as_(stack, who, session=session, replica=-1) as client:
            refusals += [await _read_refusal(client, uri), await _read_refusal(client, once)]
    async with as_(stack, cast.alice, session=session_id) as client:
        read, read_once = await client.read_resource(uri), await client.read_resource(once)
    assert all(refusal.startswith("pointer refused") for refusal in refusals), refusals
    assert marker not in repr(refusals)
    assert (resource_text(read), resource_text(read_once)) == (marker, marker)  # nobody burnt it


@pytest.fixture
async def pets() -> AsyncIterator[PetService]:
    async with pet_service() as service:
        yield service


async def test_a_pipeline_never_reaches_another_subjects_pointer_or_session(
    stack: Stack, cast: Cast, pets: PetService
) -> None:
    for admin in (cast.bob, cast.carol):  # the same tool in both tenants
        async with as_(stack, admin, mode="2026-07-28") as client:
            structured(await client.call_tool("register_tools", {"tools": [count_words_tool(pets.base_url)]}))
    session_id = await open_session(stack, cast.alice)
    async with as_(stack, cast.alice, session=session_id) as client:
        uri = await _pointer(client, "four words right here")
        count = {"stages": [{"tool": "count_words", "arguments": {"document": uri}}]}
        own = structured(await client.call_tool("run_pipeline", count))
    before = await stream_events(stack, cast.alice, session_stream(cast.alice.tenant, session_id))
    plant = {"stages": [{"tool": "blob_put", "arguments": {"name": "x", "text": "planted"}}]}
    answers = []
    for attacker in cast.attackers_of_alice():
        ran_before = await runs(stack, attacker)
        async with as_(stack, attacker, session=session_id, replica=-1) as client:
            answers.append(await client.call_tool("run_pipeline", count))
            answers.append(await client.call_tool("run_pipeline", plant))  # into alice's session
        async with as_(stack, attacker, session=await open_session(stack, attacker), replica=-1) as client:
            answers.append(await client.call_tool("run_pipeline", count))
        assert await runs(stack, attacker) == ran_before, attacker
    assert own["output"] == {"words": 4}
    assert all(answer.is_error for answer in answers), [text_of(a) for a in answers]
    assert pets.received == ["four words right here"]  # the service only ever got alice's own call
    assert await stream_events(stack, cast.alice, session_stream(cast.alice.tenant, session_id)) == before


# ---------------------------------------------------------------------------- data sources, registry
def _shop(stack: Stack) -> str:
    path = stack.sources_dir / f"shop-{uuid.uuid4().hex}.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "INSERT INTO customers VALUES (1, 'Ada');"
        )
    return f"sqlite+aiosqlite:///{path}"


async def _tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def _unknown(client: Client, name: str, arguments: dict[str, object]) -> str:
    try:
        result = await client.call_tool(name, arguments)
    except MCPError as error:
        return str(error)
    return f"answered: {text_of(result)}"


async def test_a_data_sources_tools_are_seen_and_called_in_its_session_only(stack: Stack, cast: Cast) -> None:
    session_id = await open_session(stack, cast.alice)
    async with as_(stack, cast.alice, session=session_id) as client:
        connected = structured(
            await client.call_tool("connect_data_source", {"name": "shop", "dsn": _shop(stack)})
        )
        ada = structured(await client.call_tool("shop_customers_read", {"id": 1}))
    seen, calls = [], []
    for attacker in cast.attackers_of_alice():
        for session in (session_id, await open_session(stack, attacker), None):
            async with as_(stack, attacker, session=session, replica=-1) as client:
                seen.append(await _tool_names(client))
                calls.append(await _unknown(client, "shop_customers_read", {"id": 1}))
        assert not [tool for tool in await runs(stack, attacker) if tool.startswith("shop_")]
    assert "shop_customers_read" in connected["registered"]
    assert ada == {"found": True, "row": {"id": 1, "name": "Ada"}}
    assert not [name for names in seen for name in names if name.startswith("shop_")]
    assert all("Unknown tool" in call for call in calls), calls


def _pet_tool(name: str, base_url: str) -> dict[str, object]:
    return {
        "name": name,
        "description": "Read pet 1.",
        "input_schema": {"type": "object"},
        "binding": {"kind": "http", "method": "GET", "base_url": base_url, "path": "/pets/1"},
    }


async def test_registered_tools_stay_in_their_tenant_and_session_tools_in_their_session(
    stack: Stack, cast: Cast, pets: PetService
) -> None:
    bob_session, bobs_other_session = await open_session(stack, cast.bob), await open_session(stack, cast.bob)
    async with as_(stack, cast.bob, session=bob_session) as client:
        structured(await client.call_tool("register_tools", {"tools": [_pet_tool("pet", pets.base_url)]}))
        scoped = {"tools": [_pet_tool("my_pet", pets.base_url)], "scope": "session"}
        structured(await client.call_tool("register_tools", scoped))
        bob_sees = await _tool_names(client)
    alice_session = await open_session(stack, cast.alice)
    async with as_(stack, cast.alice, session=alice_session, replica=-1) as client:
        alice_sees = await _tool_names(client)
        alices_pet = structured(await client.call_tool("pet", {}))
    hits = pets.hits["get_pet"]
    seen, calls = [], []
    outsiders: list[tuple[Person, str | None]] = [
        (cast.alice, alice_session),
        (cast.alice, bob_session),
        (cast.bob, bobs_other_session),
    ]
    outsiders += [(cast.bob, None), (cast.carol, bob_session), (cast.twin, None)]
    for who, session in outsiders:
        async with as_(stack, who, session=session, replica=-1) as client:
            seen.append(await _tool_names(client))
            calls.append(await _unknown(client, "my_pet", {}))
    for who in (cast.carol, cast.twin):
        async with as_(stack, who, replica=-1) as client:
            seen.append(await _tool_names(client) & {"pet"})
            calls.append(await _unknown(client, "pet", {}))
            await client.call_tool("remove_tool", {"name": "pet"})  # their own tenant has none
    async with as_(stack, cast.alice, session=alice_session) as client:
        alice_still_sees = await _tool_names(client)
    assert {"pet", "my_pet"} <= bob_sees
    assert "pet" in alice_sees
    assert "pet" in alice_still_sees
    assert "my_pet" not in alice_sees
    assert alices_pet == {"id": 1, "name": "Rex"}
    assert not [names for names in seen if "my_pet" in names or names == {"pet"}], seen
    assert all("Unknown tool" in call for call in calls), calls
    assert pets.hits["get_pet"] == hits  # nothing refused reached the service


# ------------------------------------------------------------------------------------------- audit
async def _audit(stack: Stack, who: Person, uri: str) -> dict[str, Any]:
    """An audit resource as `who` reads it, through a stateless client (no session is opened,
    so reading records nothing)."""
    async with as_(stack, who, replica=-1, mode="2026-07-28") as client:
        body = json.loads(resource_text(await client.read_resource(uri)))
    assert isinstance(body, dict)
    return body


async def _echo(stack: Stack, who: Person, text: str) -> None:
    async with as_(stack, who, mode="2026-07-28") as client:
        assert structured(await client.call_tool("echo", {"text": text})) == {"text": text}


async def test_an_auditor_reads_the_log_of_their_own_tenant_only_and_sealed(stack: Stack, cast: Cast) -> None:
    marker = f"words-{uuid.uuid4().hex}"
    for who in (cast.alice, cast.carol, cast.twin):
        await _echo(stack, who, marker)
    acme = await _audit(stack, cast.acme_auditor, "ledger://audit?limit=1000")
    acme_on_carol = await _audit(stack, cast.acme_auditor, "ledger://audit?subject=carol")
    globex_on_alice = await _audit(stack, cast.globex_auditor, "ledger://audit?subject=alice")
    async with as_(stack, cast.alice, mode="2026-07-28") as client:
        refused = await _read_refusal(client, "ledger://audit")
    events = acme["events"]
    assert {event["tenant"] for event in events} == {cast.alice.tenant}
    assert "echo" in {event["tool_name"] for event in events if event["subject"] == "alice"}
    assert acme_on_carol["events"] == []
    assert globex_on_alice["events"]  # the twin's own calls, never acme's alice
    assert {(e["tenant"], e["subject"]) for e in globex_on_alice["events"]} == {(cast.twin.tenant, "alice")}
    assert marker not in json.dumps([acme, globex_on_alice])
    assert "auditor" in refused


async def test_an_auditors_chain_figures_do_not_move_with_another_tenants_activity(
    stack: Stack, cast: Cast
) -> None:
    await _echo(stack, cast.alice, "acme's own call")
    before = await _audit(stack, cast.acme_auditor, "ledger://audit/verify")
    for index in range(3):
        await _echo(stack, cast.carol, f"globex call {index}")
    after = await _audit(stack, cast.acme_auditor, "ledger://audit/verify")
    assert before["first_broken"] is None
    assert after == before


# ------------------------------------------------------------------------------ exports, erasure
@dataclass(frozen=True)
class Traces:
    """What one person left behind: a session with a note, and a blob behind a pointer."""

    marker: str
    session_id: str
    pointer: str


async def _leave_traces(stack: Stack, who: Person) -> Traces:
    marker = f"{who.subject}-of-{who.tenant}-{uuid.uuid4().hex}"
    session_id = await open_session(stack, who)
    async with as_(stack, who, session=session_id) as client:
        structured(await client.call_tool("note_set", {"key": "k", "value": marker}))
        structured(await client.call_tool("echo", {"text": marker}))
        pointer = await _pointer(client, marker)
    return Traces(marker, session_id, pointer)


async def test_an_export_holds_its_subjects_data_and_nothing_of_anyone_else(stack: Stack, cast: Cast) -> None:
    people = (cast.alice, cast.bob, cast.twin)
    traces = {who: await _leave_traces(stack, who) for who in people}
    for who in people:
        bundle = await stack.export(who.tenant, who.subject)
        text = json.dumps(bundle)
        assert (bundle["tenant"], bundle["subject"]) == (who.tenant, who.subject)
        assert traces[who].marker in text, who
        sessions = {s["session_id"]: s["notes"] for s in bundle["sessions"]}
        assert sessions[traces[who].session_id] == {"k": traces[who].marker}
        for other in people:
            if other != who:
                assert traces[other].marker not in text, (who, other)
                assert traces[other].session_id not in text, (who, other)


async def _still_there(stack: Stack, who: Person, traces: Traces) -> tuple[object, str, bool]:
    """What `who` reads back of their traces: the note, the blob, and whether their export holds it."""
    async with as_(stack, who, session=traces.session_id, replica=-1) as client:
        note = structured(await client.call_tool("note_get", {"key": "k"})).get("value")
        blob = resource_text(await client.read_resource(traces.pointer))
    return note, blob, traces.marker in json.dumps(await stack.export(who.tenant, who.subject))


async def test_erasing_a_subject_leaves_everyone_else_intact_and_nothing_of_theirs_readable(
    stack: Stack, cast: Cast
) -> None:
    people = (cast.alice, cast.bob, cast.carol, cast.twin)
    traces = {who: await _leave_traces(stack, who) for who in people}
    alice = traces[cast.alice]
    assert await stack.clear_text(alice.session_id)  # the scan reads where the stack keeps data

    record = await stack.erase(cast.alice.tenant, "alice")

    assert (record["requested_by"], record["keys_destroyed"]) == ("dpo", 1)
    assert await stack.clear_text(alice.marker) == []
    for who in (cast.bob, cast.carol, cast.twin):
        marker = traces[who].marker
        assert await _still_there(stack, who, traces[who]) == (marker, marker, True), who
    bundle = json.dumps(await stack.export(cast.alice.tenant, "alice"))
    async with as_(stack, cast.alice, session=alice.session_id, replica=-1) as client:
        blob = await _read_refusal(client, alice.pointer)
    assert alice.marker not in bundle
    assert '{"$erased": true}' in bundle
    assert "was erased" in blob


async def test_a_tenant_admin_erases_in_their_own_tenant_only_and_a_subject_erases_nobody(
    stack: Stack, cast: Cast
) -> None:
    alice, twin = await _leave_traces(stack, cast.alice), await _leave_traces(stack, cast.twin)
    endpoint = stack.urls[-1].removesuffix("/mcp") + "/admin/erasures"
    async with httpx.AsyncClient(timeout=60) as http:
        by_alice = await http.post(
            endpoint,
            json={"subject": "bob"},
            headers={"authorization": f"Bearer {bearer(stack, cast.alice)}"},
        )
    record = await erase_as_admin(stack.urls[-1], bearer(stack, cast.carol), "alice")  # globex's alice

    assert by_alice.status_code == 403
    assert record["keys_destroyed"] == 1
    assert await _still_there(stack, cast.alice, alice) == (alice.marker, alice.marker, True)
    async with as_(stack, cast.twin, session=twin.session_id) as client:
        assert "was erased" in await _read_refusal(client, twin.pointer)


# ----------------------------------------------------------------------------------- sealed state
async def test_sealed_state_opens_for_its_subject_of_its_tenant_only(stack: Stack, cast: Cast) -> None:
    marker = f"cart-{uuid.uuid4().hex}"
    async with as_(stack, cast.alice, mode="2026-07-28") as client:
        sealed = structured(await client.call_tool("state_seal", {"state": {"cart": marker}}))["sealed"]
        own = structured(await client.call_tool("state_open", {"sealed": sealed}))
    answers = []
    for attacker in cast.attackers_of_alice():
        async with as_(stack, attacker, replica=-1, mode="2026-07-28") as client:
            answers.append(await client.call_tool("state_open", {"sealed": sealed}))
    assert own == {"state": {"cart": marker}}
    assert marker not in sealed
    assert [(a.is_error, text_of(a).split(":")[0]) for a in answers] == [(True, "tampered")] * 3
    assert marker not in repr(answers)
