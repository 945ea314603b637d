"""Attacks on ids and idempotency against the embedded gateway with auth on (findings 1, 13).

The attackers hold real tokens and speak through the official MCP client: carol@globex
replays alice@acme's plan to read her notes or to plant a value alice's identical plan would
return, and keeps what she got after alice is erased; bob@acme squats alice's plan id and
probes it. Each test proves the victim's data reached nobody else, in the answers, in the
event store opened with every key, and in the files of the data directory.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.blobs.files import FileBlobStore
from mcp_ledger.consumers.mapping import EventMapper, command_key
from mcp_ledger.consumers.plans.commands import PlanCommandHandler
from mcp_ledger.consumers.plans.stream import plan_records, task_command_id
from mcp_ledger.consumers.state_tools import state_runners
from mcp_ledger.consumers.tools import ToolInvocation
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.pointers import PointerSigner
from mcp_ledger.crypto.sealed import StateSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import AcceptPlan, CallTool, ExecutePlan, new_command_id
from mcp_ledger.domain.plans.events import PlanAccepted
from mcp_ledger.domain.plans.model import normalise_plan, plan_hash
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.domain.plans.validation import with_derived_dependencies
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.streams import legacy_plan_stream, plan_stream, plan_view_id
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import CommandKey, StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine, open_event_store
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.ports import Message
from mcp_ledger.projections.plans.memory import MemoryPlanViewStore
from mcp_ledger.projections.plans.projector import PlanProjector
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


# ---- below the gateway: the same defences, each attacked where it lives ----


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlEventStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    opened = await open_event_store(url)
    yield opened
    await opened.close()


async def test_another_tenants_event_carrying_a_pending_command_id_resolves_nothing() -> None:
    bus = InProcessBus(partitions=1)
    gateway_ = CommandGateway(bus, "commands", timeout=5.0)

    async def worker(message: Message) -> None:
        # carol's recorded outcome under alice's command id arrives first, then alice's own
        for tenant, subject, text in (("globex", "carol", "planted"), ("acme", "alice", "genuine")):
            event = StoredEvent(
                position=1 if text == "planted" else 2,
                stream_id=f"tenant:{tenant}:call:{message.headers['command_id']}",
                version=1,
                event_type="ToolSucceeded",
                schema_version=1,
                data={"structured": {"text": text}},
                metadata={"command_id": message.headers["command_id"], "tenant": tenant, "subject": subject},
                recorded_at=datetime.now(UTC),
            )
            headers = {"event_type": "ToolSucceeded", "command_id": message.headers["command_id"]}
            await bus.publish("events", event.stream_id, json.dumps(event.to_json()).encode(), headers)

    bus.subscribe("commands", worker, group="workers")
    bus.subscribe("events", gateway_.on_event, group=None)
    await bus.start()
    try:
        outcome = await gateway_.call(CallTool(tenant="acme", subject="alice", tool_name="echo"))
    finally:
        await bus.stop()
    assert outcome["data"] == {"structured": {"text": "genuine"}}


async def test_the_same_command_id_stores_one_blob_per_subject_and_neither_overwrites_the_other(
    tmp_path: Path,
) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    signer = PointerSigner(b"k" * 32)
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    keys = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    runners = state_runners(blobs, signer, StateSealer(keys, b"s" * 32), pointer_ttl=600)
    uris = {}
    for subject in ("alice", "bob"):
        command = CallTool(
            command_id="same-id",
            tenant="acme",
            subject=subject,
            session_id=f"session-{subject}",
            tool_name="blob_put",
            arguments={"name": "memo.txt", "text": f"{subject}'s memo"},
        )
        outcome = await runners["blob_put"](
            ToolInvocation(command=command, session=Session(command.stream_id))
        )
        assert outcome.structured is not None
        uris[subject] = str(outcome.structured["uri"])

    for subject, uri in uris.items():
        pointer = signer.check(
            uri, tenant="acme", subject=subject, session_id=f"session-{subject}", now=time.time()
        )
        blob = await blobs.get("acme", pointer.blob_id)
        assert blob is not None
        assert (blob.subject, blob.data) == (subject, f"{subject}'s memo".encode())
    await keys.close()


async def _legacy_plan(store: SqlEventStore, owner: str, plan_id: str) -> str:
    """A plan of `owner` accepted before plan ids were scoped, on the tenant-wide stream."""
    plan = with_derived_dependencies(
        normalise_plan(
            {"plan_id": plan_id, "tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": "x"}}]}
        )
    )
    accepted = PlanAccepted(
        command_id=f"accept-{plan_id}",
        plan_id=plan_id,
        tenant="acme",
        subject=owner,
        roles=["admin"],
        plan=plan.model_dump(mode="json"),
        plan_hash=plan_hash(plan),
        seed=1,
        accepted_at=time.time(),
    )
    stream = legacy_plan_stream("acme", plan_id)
    records = plan_records([accepted], tenant="acme", subject=owner, command_id=accepted.command_id)
    await store.append(stream, 0, records, command=CommandKey("acme", owner, accepted.command_id))
    return stream


def _outcome(events: list[StoredEvent]) -> list[str]:
    return [
        f"{e.event_type} {e.data['error_code']}" if "error_code" in e.data else e.event_type for e in events
    ]


async def test_a_plan_accepted_before_ids_were_scoped_is_reachable_by_its_owner_only(
    store: SqlEventStore,
) -> None:
    legacy = await _legacy_plan(store, "alice", "old-report")
    runs: list[str] = []

    async def request_run(stream_id: str) -> None:
        runs.append(stream_id)

    async def published(events: Sequence[StoredEvent]) -> None:
        return None

    handler = PlanCommandHandler(store, builtin_catalog(), request_run, published, time.time)
    outcomes = {}
    for subject in ("bob", "alice"):
        command = ExecutePlan(tenant="acme", subject=subject, roles=("admin",), plan_id="old-report")
        await handler.handle(command)
        outcomes[subject] = _outcome(await store.events_for_command(command_key(command)))
    # bob's own plan of that id is his to create; alice's id is taken, by her own plan only
    plan = with_derived_dependencies(
        normalise_plan(
            {
                "plan_id": "old-report",
                "tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": "x"}}],
            }
        )
    )
    for subject in ("bob", "alice"):
        accept = AcceptPlan(
            tenant="acme",
            subject=subject,
            roles=("admin",),
            plan_id="old-report",
            plan=plan.model_dump(mode="json"),
            plan_hash=plan_hash(plan),
        )
        await handler.handle(accept)
        outcomes[f"{subject} accepts"] = _outcome(await store.events_for_command(command_key(accept)))

    assert outcomes == {
        "bob": ["PlanCommandRefused unknown_plan"],
        "alice": ["PlanStarted"],
        "bob accepts": ["PlanAccepted"],
        "alice accepts": ["PlanCommandRefused plan_exists"],
    }
    assert [e.event_type for e in await store.read_stream(legacy)] == ["PlanAccepted", "PlanStarted"]
    assert runs == [legacy]
    views = MemoryPlanViewStore()
    await PlanProjector(views).rebuild(store)
    found = [await views.get("acme", plan_view_id(subject, "old-report")) for subject in ("alice", "bob")]
    assert [(view.subject, view.status) for view in found if view is not None] == [
        ("alice", "running"),
        ("bob", "accepted"),
    ]


def test_identical_plans_accepted_twice_derive_different_task_command_ids() -> None:
    plan = with_derived_dependencies(normalise_plan(DAILY_NOTES))

    def accepted_as(command_id: str) -> PlanState:
        event = PlanAccepted(
            command_id=command_id,
            plan_id=plan.plan_id,
            tenant="acme",
            subject="alice",
            roles=["admin"],
            plan=plan.model_dump(mode="json"),
            plan_hash=plan_hash(plan),
            seed=1,
            accepted_at=1.0,
        )
        return PlanState.replay(plan_stream("acme", "alice", plan.plan_id), [event])

    first, second = accepted_as(new_command_id()), accepted_as(new_command_id())
    resumed = PlanState.replay(first.stream_id, [first.accepted] if first.accepted else [])

    assert task_command_id(first, "read", "1") != task_command_id(second, "read", "1")
    assert task_command_id(resumed, "read", "1") == task_command_id(first, "read", "1")
    assert plan_hash(plan)[7:23] not in task_command_id(first, "read", "1")
    assert "read" not in task_command_id(first, "read", "1")  # the caller's task id stays sealed


async def test_a_plan_event_whose_metadata_names_another_owner_than_its_stream_is_not_projected(
    store: SqlEventStore,
) -> None:
    plan = with_derived_dependencies(normalise_plan(DAILY_NOTES))
    forged = PlanAccepted(
        command_id="forged",
        plan_id=plan.plan_id,
        tenant="acme",
        subject="bob",
        roles=["admin"],
        plan=plan.model_dump(mode="json"),
        plan_hash=plan_hash(plan),
        seed=1,
        accepted_at=1.0,
    )
    records = plan_records([forged], tenant="acme", subject="bob", command_id="forged")
    await store.append(plan_stream("acme", "alice", plan.plan_id), 0, records)  # bob's, in alice's stream

    views = MemoryPlanViewStore()
    await PlanProjector(views).rebuild(store)

    assert await views.all_views() == []
