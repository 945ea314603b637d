"""Recently loaded sessions, so a long conversation is not replayed from its first event on
every command.

A cached session is caught up by reading only the events after its version, so it is never
stale for a decision (and the append's expected version still guards against races). Each
load hands out a copy, so concurrent commands of one session (plan tasks) never fold the
same events twice into one object. Entries live at most `max_age` seconds from their full
replay: personal data opened with a subject's key does not outlive the process's key cache
after an erasure by more than that.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.eventstore.ports import EventStore, StoredEvent

Opener = Callable[[StoredEvent], Awaitable[DomainEvent]]


class SessionCache:
    def __init__(
        self,
        store: EventStore,
        to_domain: Opener,
        *,
        max_age: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._to_domain = to_domain
        self._max_age = max_age
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    async def load(self, stream_id: str) -> Session:
        """The session as stored now (a private copy)."""
        now = self._clock()
        entry = self._entries.get(stream_id)
        if entry is None or now - entry[1] >= self._max_age:
            session, loaded_at = Session(stream_id=stream_id), now
        else:
            session, loaded_at = entry[0].copy(), entry[1]
        for stored in await self._store.read_stream(stream_id, after_version=session.version):
            session.apply(await self._to_domain(stored))
        current = self._entries.get(stream_id)
        if current is None or current[0].version <= session.version:
            self._entries[stream_id] = (session.copy(), loaded_at)
            self._entries.move_to_end(stream_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return session

    def forget(self, stream_id: str) -> None:
        self._entries.pop(stream_id, None)
