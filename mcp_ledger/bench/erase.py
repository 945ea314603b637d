"""`mcp-ledger bench erase`: how long erasing takes, for one subject with many events and for
many subjects, on the configured event store (SQLite in a temporary directory by default).

Events are written sealed, as the worker writes them (note writes, one append per hundred);
each subject also has a session view to purge. Erasure is crypto-shredding, so its time should
not grow with the subject's event count; the report says whether it does. After the runs it
checks that nothing of the erased subjects opens any more.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import erased
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.domain.events import DomainEvent, SessionNoteWritten, SessionOpened
from mcp_ledger.domain.streams import session_stream
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine, open_event_store
from mcp_ledger.projections.purge import SessionViewPurger
from mcp_ledger.projections.sessions.memory import MemorySessionViewStore
from mcp_ledger.projections.sessions.view import SessionView

Progress = Callable[[str], None]
_BATCH = 100


async def _ignore(_events: object) -> None:
    return None


class _Fixture:
    def __init__(self, store: SqlEventStore, keys: CachingKeyStore, tenant: str) -> None:
        self.store, self.keys, self.tenant = store, keys, tenant
        self.mapper = EventMapper(RecordSealer(keys))
        self.views = MemorySessionViewStore()

    async def subject_with(self, subject: str, events: int) -> str:
        """A session of `subject` holding `events` sealed events (and its view); its stream id."""
        command = CallTool(
            tenant=self.tenant, subject=subject, session_id=uuid.uuid4().hex, tool_name="note_set"
        )
        assert command.session_id is not None
        stream = session_stream(self.tenant, command.session_id)
        opened = SessionOpened(
            session_id=command.session_id, tenant=self.tenant, subject=subject, opened_at=0.0
        )
        written, version = 0, 0
        while written < events:
            count = min(_BATCH, events - written)
            batch: list[DomainEvent] = [
                SessionNoteWritten(key=f"n{written + i}", value=f"private {subject} {i}")
                for i in range(count)
            ]
            if version == 0:
                batch = [opened, *batch[1:]]
            records = await self.mapper.to_new_events(command, batch, stream)
            version = len((await self.store.append(stream, version, records)).events) + version
            written += count
        view = SessionView(tenant=self.tenant, session_id=command.session_id, subject=subject, opened_at=0.0)
        await self.views.compare_and_set(view.model_copy(update={"last_position": 1}), 0)
        return stream

    def handler(self) -> ErasureHandler:
        return ErasureHandler(self.store, self.keys, [SessionViewPurger(self.views)], _ignore)

    async def unreadable(self, stream: str) -> bool:
        opened = [await self.mapper.open(event) for event in await self.store.read_stream(stream)]
        return all(e.data.get("value") == erased() for e in opened if e.event_type == "SessionNoteWritten")


async def _timed_erase(fixture: _Fixture, subject: str) -> float:
    started = time.perf_counter()
    await fixture.handler().handle(EraseSubject(tenant=fixture.tenant, subject=subject, requested_by="bench"))
    return (time.perf_counter() - started) * 1000


async def run_erase_bench(store_url: str, events: int, subjects: int, progress: Progress) -> dict[str, Any]:
    """Measure both cases on `store_url` (migrated) and return the report."""
    store = await open_event_store(store_url)
    # Cached as in the worker: sealing looks the subject's key up once per event.
    keys = CachingKeyStore(
        SqlKeyStore(create_store_engine(store_url), KekRing([Kek(new_key())]), owns_engine=True)
    )
    fixture = _Fixture(store, keys, f"bench-{uuid.uuid4().hex[:8]}")
    try:
        progress(f"writing {events} sealed events for one subject")
        started = time.perf_counter()
        big_stream = await fixture.subject_with("big-subject", events)
        write_s = time.perf_counter() - started
        big_ms = await _timed_erase(fixture, "big-subject")
        progress(
            f"erasing one subject with {events} events took {big_ms:.1f} ms; writing {subjects} subjects"
        )
        small_streams = [await fixture.subject_with(f"subject-{n}", 10) for n in range(subjects)]
        started = time.perf_counter()
        each = [await _timed_erase(fixture, f"subject-{n}") for n in range(subjects)]
        many_s = time.perf_counter() - started
        checked = [big_stream, *small_streams[:: max(1, subjects // 20)]]
        unreadable = all([await fixture.unreadable(stream) for stream in checked])
    finally:
        await keys.close()
        await store.close()
    return {
        "store": store_url.split("://")[0],
        "one_subject": {
            "events": events,
            "erase_ms": round(big_ms, 2),
            "write_events_per_s": round(events / write_s),
        },
        "many_subjects": {
            "subjects": subjects,
            "events_each": 10,
            "total_s": round(many_s, 3),
            "subjects_per_s": round(subjects / many_s, 1),
            "p50_ms": round(statistics.median(each), 2),
            "p99_ms": round(statistics.quantiles(each, n=100)[98] if len(each) >= 2 else each[0], 2),
        },
        "erased_data_unreadable": unreadable,
        "views_left": len(await fixture.views.all_views()),
    }
