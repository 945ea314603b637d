"""Sealed by default (finding 5): every caller-supplied string of an event, a command or a blob
is sealed unless domain/personal.NOT_PERSONAL names it, and the attacker holding the data
directory, the export or the bus finds none of them once the subject is erased.

First the rule itself (every field of every registered type is decided; an undecided one is
sealed anyway), then the records and blobs it seals, then the embedded gateway with auth on:
a note key, a blob's mime type, a plan's condition literal, a task id and a cancel reason
written through MCP are, after the subject's erasure, in no file of the data directory, not
in the export, and were never on the in-process bus in the clear.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx
import mcp_types as types
import pytest
from pydantic import BaseModel

import mcp_ledger.domain
from mcp_ledger.blobs.files import FileBlobStore
from mcp_ledger.blobs.ports import Blob, BlobStore
from mcp_ledger.blobs.sealed import SealedBlobStore
from mcp_ledger.blobs.sql import SqlBlobStore
from mcp_ledger.consumers.compliance.export import export_subject
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import erased_value, is_sealed
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import AcceptPlan, CancelPlan, Command, CommandEnvelope
from mcp_ledger.domain.compliance.erasure import COMPLIANCE_EVENTS, EraseSubject
from mcp_ledger.domain.compliance.privacy import PRIVACY_EVENTS
from mcp_ledger.domain.events import EVENT_TYPES, DomainEvent, SessionNoteWritten
from mcp_ledger.domain.personal import (
    NOT_PERSONAL,
    contradictions,
    field_names,
    personal_fields,
    undecided_fields,
)
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import NewEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine, open_event_store
from mcp_ledger.observability.traced_bus import TracedBus
from mcp_ledger.producers.ports import Handler, Message, MessageBus, Outgoing
from mcp_ledger.wiring.protection import audit_row, open_key_store
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

JSON = dict[str, Any]
METADATA = {"tenant": "acme", "subject": "alice", "command_id": "c1", "correlation_id": "c1"}


# ---------------------------------------------------------------- the rule


def _subclasses(base: type) -> set[type]:
    found: set[type] = set()
    pending: list[type] = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return {cls for cls in found if cls.__module__.startswith("mcp_ledger.")}


def _sealed_types() -> list[type]:
    """Every event, command and blob type of the code base (every domain module loaded)."""
    for module in pkgutil.walk_packages(mcp_ledger.domain.__path__, "mcp_ledger.domain."):
        importlib.import_module(module.name)
    types_ = {*EVENT_TYPES.values(), *_subclasses(DomainEvent), *_subclasses(Command), Blob}
    return sorted(types_, key=lambda cls: cls.__name__)


def test_every_field_of_every_event_command_and_blob_is_decided_personal_or_not() -> None:
    undecided = [
        f"decide whether {cls.__name__}.{name} is personal: mark it Personal[...] or put it on "
        "domain/personal.NOT_PERSONAL with its reason"
        for cls in _sealed_types()
        for name in sorted(undecided_fields(cls))
    ]
    assert undecided == []
    contradicting = [f"{cls.__name__}.{n}" for cls in _sealed_types() for n in contradictions(cls)]
    assert contradicting == []  # marked Personal and allowlisted: the allowlist would win


def test_every_allowlist_entry_names_a_field_its_class_declares_and_gives_a_reason() -> None:
    declared = {f"{cls.__name__}.{name}" for cls in _sealed_types() for name in field_names(cls)}
    for cls in _sealed_types():
        declared |= {f"{base.__name__}.{name}" for base in cls.__mro__[1:] for name in _own(base)}
    assert sorted(set(NOT_PERSONAL) - declared) == []
    assert [entry for entry, reason in NOT_PERSONAL.items() if len(reason) < 10] == []


def _own(cls: type) -> tuple[str, ...]:
    try:
        return field_names(cls)
    except TypeError:
        return ()


def test_every_sealed_field_has_an_erased_placeholder_that_fits_its_type() -> None:
    models = [cls for cls in _sealed_types() if issubclass(cls, BaseModel)]
    missing = []
    for model in models:
        for name in personal_fields(model):
            try:
                erased_value(model, name)
            except TypeError:
                missing.append(f"{model.__name__}.{name}")
    assert missing == []


def test_what_is_written_or_published_without_a_sealer_has_nothing_to_seal() -> None:
    # Erasure and privacy events are appended unsealed, the erasure command travels unsealed:
    # a personal field there would be stored in the clear, so none may exist.
    unsealed: list[type] = [*COMPLIANCE_EVENTS, *PRIVACY_EVENTS, EraseSubject]
    assert {cls.__name__: personal_fields(cls) for cls in unsealed if personal_fields(cls)} == {}


def test_the_fields_the_attack_read_are_now_sealed() -> None:
    assert {"key", "value"} <= personal_fields(EVENT_TYPES["SessionNoteWritten"])
    assert personal_fields(EVENT_TYPES["SessionNoteDeleted"]) == {"key"}
    assert personal_fields(EVENT_TYPES["TaskSkipped"]) == {"task_id", "reason"}
    assert {"plan", "plan_hash"} <= personal_fields(EVENT_TYPES["PlanAccepted"])
    assert {"plan", "plan_hash"} <= personal_fields(AcceptPlan)
    assert "reason" in personal_fields(CancelPlan)
    assert personal_fields(Blob) == {"name", "mime_type", "data"}


# ---------------------------------------------------------------- records


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlEventStore]:
    opened = await open_event_store(database_url)
    yield opened
    await opened.close()


@pytest.fixture
async def keys(database_url: str) -> AsyncIterator[SqlKeyStore]:
    store = SqlKeyStore(create_store_engine(database_url), KekRing([Kek(new_key())]), owns_engine=True)
    yield store
    await store.close()


class ExampleFieldAdded(DomainEvent):
    """An event type as someone might add it, with no decision about its fields."""

    schema_version: ClassVar[int] = 1
    tool_name: str
    comment: str


@pytest.fixture
def undecided_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, "ExampleFieldAdded", ExampleFieldAdded)


async def test_a_field_nobody_decided_about_is_sealed_and_still_opens(
    undecided_type: None, keys: SqlKeyStore
) -> None:
    records = RecordSealer(keys)
    data = {"tool_name": "echo", "comment": "marker-undecided"}
    sealed = await records.seal_event("ExampleFieldAdded", data, METADATA, "s")
    # Even tool_name: the allowlist names ToolCalled.tool_name, not this type's.
    assert [is_sealed(sealed["comment"]), is_sealed(sealed["tool_name"])] == [True, True]
    assert "marker-undecided" not in json.dumps(sealed)
    assert await records.open_event("ExampleFieldAdded", sealed, METADATA, "s") == data


async def test_an_event_type_this_code_does_not_know_is_sealed_whole(keys: SqlKeyStore) -> None:
    data = {"note": "marker-unknown", "count": 3}
    sealed = await RecordSealer(keys).seal_event("FromANewerWriter", data, METADATA, "s")
    assert all(is_sealed(value) for value in sealed.values())
    assert await RecordSealer(keys).open_event("FromANewerWriter", sealed, METADATA, "s") == data


async def test_a_skip_reason_quoting_a_condition_and_a_note_key_are_stored_as_ciphertext(
    keys: SqlKeyStore,
) -> None:
    records = RecordSealer(keys)
    skipped = {"task_id": "t_marker_id", "reason": "condition false: a.output.x == 'marker-literal'"}
    note = {"key": "marker-key", "value": "v"}
    stored = [
        await records.seal_event("TaskSkipped", skipped, METADATA, "tenant:acme:plan:p"),
        await records.seal_event("SessionNoteWritten", note, METADATA, "tenant:acme:session:s"),
        await records.seal_event(
            "SessionNoteDeleted", {"key": "marker-key"}, METADATA, "tenant:acme:session:s"
        ),
    ]
    assert "marker" not in json.dumps(stored)


async def test_a_command_travels_with_its_cancel_reason_and_plan_hash_sealed_and_opens_to_the_same_command(
    keys: SqlKeyStore,
) -> None:
    records = RecordSealer(keys)
    commands: list[Command] = [
        CancelPlan(tenant="acme", subject="alice", plan_id="p1", reason="marker-reason"),
        AcceptPlan(
            tenant="acme",
            subject="alice",
            plan_id="p1",
            plan={"goal": "marker-goal"},
            plan_hash="sha256:marker",
        ),
    ]
    for command in commands:
        wire = json.dumps({"command": await records.seal_command(command)})
        assert "marker" not in wire
        opened = await records.open_command(json.loads(wire)["command"])
        assert CommandEnvelope.model_validate({"command": opened}).command == command


async def test_records_written_before_a_field_was_sealed_still_read(
    keys: SqlKeyStore, store: SqlEventStore
) -> None:
    records = RecordSealer(keys)
    mapper = EventMapper(records)
    # What the previous version wrote: the note's value sealed, its key in the clear.
    value = (await records.seal_event("SessionNoteWritten", {"key": "k", "value": "v"}, METADATA, "s-1"))[
        "value"
    ]
    await store.append(
        "s-1", 0, [NewEvent("SessionNoteWritten", {"key": "old-key", "value": value}, 1, METADATA)]
    )
    (stored,) = await store.read_stream("s-1")
    assert await mapper.to_domain(stored) == SessionNoteWritten(key="old-key", value="v")
    # A command still on the topic from before: its cancel reason in the clear.
    old = CancelPlan(tenant="acme", subject="alice", plan_id="p1", reason="old reason")
    opened = await records.open_command(old.model_dump(mode="json"))
    assert CommandEnvelope.model_validate({"command": opened}).command == old


async def test_an_auditor_sees_a_field_sealed_since_as_sealed_even_in_an_old_record(
    keys: SqlKeyStore, store: SqlEventStore
) -> None:
    # An auditor (a tenant admin) reads the audit log: an old row kept the note key in the clear.
    old = {"key": "marker-old-key", "value": "marker-old-value"}
    await store.append("s-1", 0, [NewEvent("SessionNoteWritten", old, 1, METADATA)])
    (stored,) = await store.read_stream("s-1")
    row = audit_row(stored)
    assert row["data"] == {"key": "[sealed]", "value": "[sealed]"}
    assert (row["event_type"], row["subject"]) == ("SessionNoteWritten", "alice")  # who and what stay


# ---------------------------------------------------------------- blobs

MIME = "text/x-marker-mime"


def _blob(blob_id: str = "b1") -> Blob:
    return Blob(
        blob_id=blob_id,
        tenant="acme",
        subject="alice",
        session_id="s1",
        name="memo",
        mime_type=MIME,
        data=b"contents",
        created_at=1.0,
    )


@pytest.fixture(params=["files", "sqlite"])
async def raw_blobs(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[BlobStore]:
    if request.param == "files":
        yield FileBlobStore(tmp_path / "blobs")
        return
    sql = SqlBlobStore(create_store_engine(database_url))
    yield sql
    await sql.close()


def _files_holding(directory: Path, marker: str) -> list[str]:
    needle = marker.encode()
    return sorted(str(p) for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes())


async def test_a_blobs_mime_type_is_sealed_at_rest_and_blank_in_its_tombstone(
    raw_blobs: BlobStore, keys: SqlKeyStore, tmp_path: Path
) -> None:
    blobs = SealedBlobStore(raw_blobs, keys)
    await blobs.put(_blob())
    assert await blobs.get("acme", "b1") == _blob()
    stored = await raw_blobs.get("acme", "b1")
    assert stored is not None
    assert "marker" not in stored.mime_type
    assert _files_holding(tmp_path, "marker-mime") == []  # the sidecar, or the SQLite file and WAL
    assert await blobs.purge_subject("acme", "alice") == 1
    tombstone = await raw_blobs.get("acme", "b1")
    assert tombstone is not None
    assert (tombstone.erased, tombstone.mime_type, tombstone.name, tombstone.data) == (True, "", "", b"")


async def test_a_blob_stored_before_its_mime_type_was_sealed_still_reads(
    raw_blobs: BlobStore, keys: SqlKeyStore
) -> None:
    blobs = SealedBlobStore(raw_blobs, keys)
    await blobs.put(_blob())
    stored = await raw_blobs.get("acme", "b1")
    assert stored is not None
    # The previous version sealed the name and the contents and kept the mime type in the clear.
    await raw_blobs.put(dataclasses.replace(stored, mime_type="text/plain"))
    assert await blobs.get("acme", "b1") == dataclasses.replace(_blob(), mime_type="text/plain")


async def test_a_blob_of_a_destroyed_key_reads_as_erased_without_its_mime_type(
    raw_blobs: BlobStore, keys: SqlKeyStore
) -> None:
    blobs = SealedBlobStore(raw_blobs, keys)
    await blobs.put(_blob())
    await keys.destroy("acme", "alice")
    erased = await blobs.get("acme", "b1")
    assert erased is not None
    assert (erased.erased, erased.mime_type, erased.name, erased.data) == (True, "", "", b"")


# ---------------------------------------------------------------- the attacker with the data directory


class RecordingBus:
    """The real in-process bus, keeping a copy of every message published through it."""

    def __init__(self, inner: MessageBus) -> None:
        self.inner = inner
        self.published: list[Message] = []

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    def subscribe(
        self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1, in_flight: int = 1
    ) -> None:
        self.inner.subscribe(topic, handler, group=group, concurrency=concurrency)

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.published.append(Message(topic, key, value, dict(headers or {})))
        await self.inner.publish(topic, key, value, headers)

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        self.published.extend(Message(topic, m.key, m.value, dict(m.headers)) for m in messages)
        await self.inner.publish_many(topic, messages)


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, RecordingBus]]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        traced = running.runtime.bus
        assert isinstance(traced, TracedBus)
        recorder = RecordingBus(traced.inner)
        traced.inner = recorder  # everything published from here on passes through it
        yield running, recorder


def _markers() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    return {
        "note key": f"notekey{tag}",
        "mime type": f"mimetype{tag}",
        "condition literal": f"literal{tag}",
        "task id": f"task_{tag}",
        "cancel reason": f"reason{tag}",
    }


def _plan_yaml(plan_id: str, markers: Mapping[str, str]) -> str:
    """A plan in its YAML form whose edge condition compares with a literal, false at run time."""
    task, literal = markers["task id"], markers["condition literal"]
    return (
        f"plan_id: {plan_id}\n"
        "nodes:\n"
        "  - {id: first, tool: echo, params: {text: plain}}\n"
        f"  - {{id: {task}, tool: echo, params: {{text: unused}}}}\n"
        # A session tool: its call is a command whose id the executor derives for the task.
        f"  - {{id: {task}run, tool: note_list, params: {{}}}}\n"
        "edges:\n"
        f"  - {{from: first, to: {task}, condition: \"first.output.text == '{literal}'\"}}\n"
    )


async def _write_everything(url: str, token: str, markers: Mapping[str, str]) -> str:
    """As alice: a note (set, read, deleted), a blob, a plan whose condition skips a task, and
    a cancellation with a reason. Returns alice's session id."""
    async with mcp_client(url, token=token) as client:
        session_id = str(structured(await client.call_tool("session_open", {}))["session_id"])
    key, mime = markers["note key"], f"text/{markers['mime type']}"
    async with mcp_client(url, session=session_id, token=token) as client:
        structured(await client.call_tool("note_set", {"key": key, "value": "a value"}))
        assert structured(await client.call_tool("note_get", {"key": key}))["value"] == "a value"
        structured(await client.call_tool("note_delete", {"key": key}))
        put = await client.call_tool("blob_put", {"name": "memo", "text": "hello", "mime_type": mime})
        [link] = [block for block in put.content if isinstance(block, types.ResourceLink)]
        assert (await client.read_resource(str(link.uri))).contents[0].mime_type == mime
        plan_id = f"p{uuid.uuid4().hex[:8]}"
        structured(await client.call_tool("create_plan", {"plan": _plan_yaml(plan_id, markers)}))
        done = structured(await client.call_tool("execute_plan", {"plan_id": plan_id, "wait_seconds": 10}))
        assert done["tasks"][markers["task id"]]["status"] == "skipped"  # the condition was evaluated
        assert markers["condition literal"] in str(done["tasks"][markers["task id"]]["message"])
        await client.call_tool("cancel_plan", {"plan_id": plan_id, "reason": markers["cancel reason"]})
    return session_id


async def _erase(url: str, admin: str, subject: str) -> JSON:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{url.removesuffix('/mcp')}/admin/erasures",
            json={"subject": subject},
            headers={"authorization": f"Bearer {admin}"},
        )
    assert answer.status_code == 200, answer.text
    record: JSON = answer.json()
    return record


async def _export(running: RunningGateway, tenant: str, subject: str) -> str:
    """The subject's export, as `mcp-ledger export` makes it."""
    settings = running.runtime.settings
    store = await open_event_store(settings.store_url)
    audit = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)
    keys = open_key_store(settings)
    try:
        bundle = await export_subject(audit, store, EventMapper(RecordSealer(keys)), tenant, subject)
    finally:
        await keys.close()
        await audit.close()
        await store.close()
    return json.dumps(bundle, ensure_ascii=False)


def _leaks(haystack: str | bytes, markers: Mapping[str, str]) -> list[str]:
    text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
    return sorted(what for what, marker in markers.items() if marker in text)


def _in_files(directory: Path, markers: Mapping[str, str]) -> dict[str, list[str]]:
    found = {str(path): _leaks(path.read_bytes(), markers) for path in directory.rglob("*") if path.is_file()}
    return {path: leaks for path, leaks in found.items() if leaks}


def _on_the_bus(recorder: RecordingBus, markers: Mapping[str, str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for message in recorder.published:
        leaks = _leaks(message.key + json.dumps(dict(message.headers)) + message.value.decode(), markers)
        if leaks:
            found.setdefault(message.topic, []).extend(leaks)
    return found


async def test_an_erased_subjects_note_key_mime_type_condition_literal_task_id_and_reason_are_nowhere(
    embedded: tuple[RunningGateway, RecordingBus], tmp_path: Path
) -> None:
    running, recorder = embedded
    settings, markers = running.runtime.settings, _markers()
    alice = good_token(settings, sub="alice", tenant="acme", roles=("data-analyst",))
    session_id = await _write_everything(running.url, alice, markers)
    # The scan reads the event store's files: they hold the session id…
    assert _in_files(tmp_path, {"session": session_id}), "no file of the data directory holds the session"
    assert _in_files(tmp_path, markers) == {}  # …but never held any marker in the clear
    assert {m.topic for m in recorder.published} >= {settings.commands_topic, settings.events_topic}

    admin = good_token(settings, sub="dpo", tenant="acme", roles=("admin",))
    record = await _erase(running.url, admin, "alice")
    assert (record["status"], record["keys_destroyed"], record["purged"]["blobs"]) == ("completed", 1, 1)

    assert _in_files(tmp_path, markers) == {}  # ledger.db, -wal, -shm, blob sidecars, keys, …
    export = await _export(running, "acme", "alice")
    assert {"SessionNoteDeleted", "TaskSkipped", "PlanCommandRefused"} <= set(
        event["event_type"] for event in json.loads(export)["events"]
    )
    assert _leaks(export, markers) == []
    assert _on_the_bus(recorder, markers) == {}
    assert markers["note key"] not in repr(await running.runtime.views.all_views())
