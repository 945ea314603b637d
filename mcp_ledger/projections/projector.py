"""Projectors: fold stored events into a view store, live or by replay (the session
projector here; the plan projector shares StreamProjector).

Live, it consumes ledger.events in a consumer group (per-session order holds because the
bus key is the stream id). Rebuild replays the event store in global order into an empty
store. Either way each view's checkpoint makes applying an event twice a no-op. Given the
event store, an event that does not follow the view's stream version (the view was lost
with the state store, or is being refilled beside live projection) makes the projector
fold the view again from its stream instead of folding over the gap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from pydantic import ValidationError

from mcp_ledger.crypto.ports import KekMismatchError
from mcp_ledger.domain.events import DomainEvent, SessionOpened, UnknownEventError, from_record
from mcp_ledger.domain.streams import parse_session_stream
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.projections.sessions.view import SessionView, fold

log = logging.getLogger(__name__)
_SAID: set[str] = set()  # KEK mismatches already logged: one line each, not one per event

Opener = Callable[[StoredEvent], Awaitable[StoredEvent]]
"""Opens an event's sealed personal fields (injected by bootstrap; projections know no crypto)."""


async def as_is(stored: StoredEvent) -> StoredEvent:
    return stored


class FoldedView(Protocol):
    @property
    def last_position(self) -> int: ...

    @property
    def stream_version(self) -> int: ...

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self: ...


V = TypeVar("V", bound=FoldedView)


class ProjectionRaceError(Exception):
    """The view kept changing under the projector; the event will be redelivered."""


Applier = Callable[[StoredEvent], Awaitable[object]]


async def replay(store: EventStore, appliers: Sequence[Applier], *, batch: int = 1000) -> int:
    """Apply every stored event, in global order, to each applier; returns the events read."""
    position, count = 0, 0
    while events := await store.read_all(after_position=position, limit=batch):
        for stored in events:
            for apply in appliers:
                await apply(stored)
        position, count = events[-1].position, count + len(events)
    return count


class ViewStore(Protocol[V]):
    async def get(self, tenant: str, view_id: str) -> V | None: ...

    async def compare_and_set(self, view: V, expected_position: int) -> bool: ...

    async def clear(self) -> None: ...


class StreamProjector(Generic[V]):
    """Folds the events of one kind of stream into views of one kind; subclasses say which
    streams (`_locate`), how an event changes a view (`_fold`) and which event starts one."""

    opening_event: ClassVar[type[DomainEvent]]

    def __init__(
        self,
        views: ViewStore[V],
        *,
        max_attempts: int = 5,
        opener: Opener = as_is,
        store: EventStore | None = None,
    ) -> None:
        self._views = views
        self._open = opener
        self._max_attempts = max_attempts
        self._store = store

    def _locate(self, stored: StoredEvent) -> tuple[str, str] | None:
        """(tenant, view id) of an event of a stream this projector folds, None for any other."""
        raise NotImplementedError

    def _fold(self, view: V | None, event: DomainEvent, position: int) -> V | None:
        raise NotImplementedError

    async def handle_payload(self, payload: bytes) -> None:
        """Apply one message from ledger.events."""
        await self.apply(StoredEvent.from_json(json.loads(payload)))

    async def apply(self, stored: StoredEvent) -> bool:
        """Fold one event in; False when it is not this projector's or was applied already.

        Raises:
            ProjectionRaceError: another projector kept winning the compare-and-set.
        """
        names = self._locate(stored)
        if names is None:
            return False
        event = await self._domain(stored)
        if event is None:
            return False
        tenant, view_id = names
        for _ in range(self._max_attempts):
            current = await self._views.get(tenant, view_id)
            checkpoint = current.last_position if current else 0
            if stored.position <= checkpoint:
                return False
            if self._store is not None and self._missed_events(current, event, stored):
                new_view = await self._refold(self._store, stored)
            else:
                new_view = self._folded(current, event, stored)
            if new_view is None:
                return False
            if await self._views.compare_and_set(new_view, checkpoint):
                return True
        raise ProjectionRaceError(f"view {tenant}/{view_id} kept changing")

    async def _domain(self, stored: StoredEvent) -> DomainEvent | None:
        try:
            opened = await self._open(stored)
            return from_record(opened.event_type, opened.schema_version, opened.data)
        except (UnknownEventError, ValidationError):
            # Not ours to fold (another writer's stream or a newer schema): say so, keep going.
            log.warning("skipping unreadable event %s at %d", stored.event_type, stored.position)
            return None
        except KekMismatchError as error:
            # A misconfigured KEK must not stop the process (it says so in /readyz and every
            # call it cannot serve); the view of these events stays behind until it is fixed.
            (log.error if str(error) not in _SAID else log.debug)("skipping events: %s", error)
            _SAID.add(str(error))
            return None

    async def _refold(self, store: EventStore, upto: StoredEvent) -> V | None:
        """The view folded from its stream up to and including `upto`."""
        log.info("view of %s missed events: folding it again from its stream", upto.stream_id)
        view: V | None = None
        for stored in await store.read_stream(upto.stream_id):
            if stored.version > upto.version:
                break
            event = await self._domain(stored)
            view = view if event is None else self._folded(view, event, stored)
        return None if view is None else view.model_copy(update={"stream_version": upto.version})

    async def rebuild(self, store: EventStore, *, batch: int = 1000) -> int:
        """Clear the views and replay every stored event; returns the events read."""
        await self._views.clear()
        return await replay(store, [self.apply], batch=batch)

    def _folded(self, view: V | None, event: DomainEvent, stored: StoredEvent) -> V | None:
        new_view = self._fold(view, event, stored.position)
        return None if new_view is None else new_view.model_copy(update={"stream_version": stored.version})

    def _missed_events(self, view: V | None, event: DomainEvent, stored: StoredEvent) -> bool:
        """Whether folding `event` onto `view` would skip events of its stream."""
        if view is None:
            # Events before the opening one fold to nothing anyway; after it, the view is missing.
            return not isinstance(event, self.opening_event) and stored.version > 1
        return stored.version != view.stream_version + 1


class SessionProjector(StreamProjector[SessionView]):
    """Applies stored events to session views."""

    opening_event = SessionOpened

    def _locate(self, stored: StoredEvent) -> tuple[str, str] | None:
        return parse_session_stream(stored.stream_id)

    def _fold(self, view: SessionView | None, event: DomainEvent, position: int) -> SessionView | None:
        return fold(view, event, position)
