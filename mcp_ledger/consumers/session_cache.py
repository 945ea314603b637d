"""Recently loaded sessions, so a long conversation is not replayed from its first event on
every command.

A cached session is caught up by reading only the events after its version, so it is never
stale for a decision (and the append's expected version still guards against races). Each
load hands out a copy, so concurrent commands of one session (plan tasks) never fold the
same events twice into one object. Entries live at most `max_age` seconds from their full
replay.

A cached session holds personal data opened with its subjects' keys, so it is part of the
erasure barrier: `forget_subject` drops every entry holding data of that subject (the
barrier calls it on every replica before an erasure completes), `set_caching(False)` drops
everything while the process cannot hear the barrier, and each entry remembers the key its
owner's command had pinned when it was replayed: a command that finds another key pinned
(the subject was erased meanwhile) replays from the store, where the old data no longer opens.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.eventstore.ports import EventStore, StoredEvent

Opener = Callable[[StoredEvent], Awaitable[DomainEvent]]


@dataclass
class _Entry:
    session: Session
    loaded_at: float
    key_id: str | None
    subjects: set[tuple[str, str]] = field(default_factory=set)


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
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._generation = 0
        self._caching = True

    async def load(self, stream_id: str, *, key_id: str | None = None) -> Session:
        """The session as stored now (a private copy); `key_id` is the key the caller pinned
        for the command's subject (None: no key, or no sealing)."""
        now, generation = self._clock(), self._generation
        cached = self._entries.get(stream_id)
        if cached is None or now - cached.loaded_at >= self._max_age or cached.key_id != key_id:
            entry = _Entry(Session(stream_id=stream_id), now, key_id)
        else:
            entry = _Entry(cached.session.copy(), cached.loaded_at, key_id, set(cached.subjects))
        for stored in await self._store.read_stream(stream_id, after_version=entry.session.version):
            entry.session.apply(await self._to_domain(stored))
            entry.subjects.add(_owner(stored))
        if self._caching and generation == self._generation:  # not forgotten meanwhile
            self._keep(stream_id, entry)
        return entry.session

    def forget(self, stream_id: str) -> None:
        self._entries.pop(stream_id, None)

    def forget_subject(self, tenant: str, subject: str) -> None:
        """Drop every session holding data of the subject (an erasure of them is running)."""
        self._generation += 1
        for stream_id in [s for s, e in self._entries.items() if (tenant, subject) in e.subjects]:
            del self._entries[stream_id]

    def set_caching(self, enabled: bool) -> None:
        """Off: drop everything and keep nothing until switched on again."""
        self._generation += 1
        self._caching = enabled
        self._entries.clear()

    def _keep(self, stream_id: str, entry: _Entry) -> None:
        current = self._entries.get(stream_id)
        if current is None or current.session.version <= entry.session.version:
            self._entries[stream_id] = _Entry(
                entry.session.copy(), entry.loaded_at, entry.key_id, entry.subjects
            )
            self._entries.move_to_end(stream_id)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _owner(stored: StoredEvent) -> tuple[str, str]:
    return str(stored.metadata.get("tenant", "")), str(stored.metadata.get("subject", ""))
