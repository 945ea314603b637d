"""Versioned event schemas: an old record is upcast on read, sealed fields included.

The worked example of docs/events.md: `ExampleNoteTagged` v1 kept its tags as one
comma-separated string; v2 keeps a list. The record stays v1 in the store forever; readers
get v2 through the upcaster registered for ("ExampleNoteTagged", 1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.events import EVENT_TYPES, UPCASTERS, DomainEvent, UnknownEventError, from_record
from mcp_ledger.domain.personal import Personal
from mcp_ledger.eventstore.ports import NewEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine
from mcp_ledger.observability.asyncapi import asyncapi_document
from mcp_ledger.settings import Settings

JSON = dict[str, Any]


class ExampleNoteTagged(DomainEvent):
    """v2: tags as a list (v1: one comma-separated string). The note is personal in both."""

    schema_version: ClassVar[int] = 2
    note: Personal[str]
    tags: list[str]


def tags_as_list(data: JSON) -> JSON:
    """ExampleNoteTagged v1 -> v2: split the tags; every other field passes through untouched."""
    return {**data, "tags": [tag.strip() for tag in data["tags"].split(",") if tag.strip()]}


@pytest.fixture
def example_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, "ExampleNoteTagged", ExampleNoteTagged)
    monkeypatch.setitem(UPCASTERS, ("ExampleNoteTagged", 1), tags_as_list)


@pytest.fixture
async def sealer(tmp_path: Path, store: SqlEventStore) -> AsyncIterator[RecordSealer]:
    engine = create_store_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    keys = SqlKeyStore(engine, KekRing([Kek(new_key())]), owns_engine=True)
    yield RecordSealer(keys)
    await keys.close()


async def test_a_v1_record_in_the_store_reads_as_the_current_version(
    example_type: None, store: SqlEventStore, sealer: RecordSealer
) -> None:
    metadata = {"tenant": "acme", "subject": "alice", "command_id": "c1", "correlation_id": "c1"}
    mapper = EventMapper(sealer)
    # Written the way a v1 writer wrote it: schema_version 1, the personal note sealed.
    (v1,) = await mapper.sealed(
        [NewEvent("ExampleNoteTagged", {"note": "call Bob", "tags": "work, urgent,"}, 1, metadata)], "s-1"
    )
    assert v1.data["note"] != "call Bob"
    await store.append("s-1", 0, [v1])
    (stored,) = await store.read_stream("s-1")
    event = await mapper.to_domain(stored)
    assert stored.schema_version == 1
    assert event == ExampleNoteTagged(note="call Bob", tags=["work", "urgent"])


def test_a_current_version_record_is_read_without_upcasting(example_type: None) -> None:
    event = from_record("ExampleNoteTagged", 2, {"note": "n", "tags": ["a"]})
    assert event == ExampleNoteTagged(note="n", tags=["a"])


def test_a_version_without_an_upcaster_is_refused(
    example_type: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(UPCASTERS, ("ExampleNoteTagged", 1))
    with pytest.raises(UnknownEventError, match="no upcaster for ExampleNoteTagged v1"):
        from_record("ExampleNoteTagged", 1, {"note": "n", "tags": "a"})


def test_the_asyncapi_document_announces_the_current_version_of_each_type(example_type: None) -> None:
    variants = asyncapi_document(Settings())["components"]["messages"]["StoredEvent"]["payload"]["oneOf"]
    versions = {
        v["properties"]["event_type"]["const"]: v["properties"]["schema_version"]["const"] for v in variants
    }
    assert versions["ExampleNoteTagged"] == 2
    assert versions["ToolCalled"] == 1


def test_every_event_type_past_version_1_has_an_upcaster_from_each_older_version() -> None:
    missing = [
        (name, version)
        for name, cls in EVENT_TYPES.items()
        for version in range(1, cls.schema_version)
        if (name, version) not in UPCASTERS
    ]
    assert missing == []
