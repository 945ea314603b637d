"""Recovery of the views after the state store loses its data: the epoch marker changes,
the worker replays the event store, and the views are what they were."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore
from mcp_ledger.projections.plans.memory import MemoryPlanViewStore
from mcp_ledger.projections.plans.projector import PlanProjector
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.sessions.memory import MemorySessionViewStore
from mcp_ledger.projections.sessions.view import SessionView
from mcp_ledger.projections.state_loss import StateLossWatch
from mcp_ledger.projections.state_loss_memory import MemoryEpochMarker
from tests.support.plans import Recorder, accept, executor, tool


class MemoryMarker(MemoryEpochMarker):
    """The in-memory epoch marker (tests/contracts/epoch_marker_contract.py), and a state store
    that can be down."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    async def read(self) -> str | None:
        if self.failing:
            raise ConnectionError("state store down")
        return await super().read()

    async def claim(self, epoch: str) -> str:
        if self.failing:
            raise ConnectionError("state store down")
        return await super().claim(epoch)


async def _history(store: SqlEventStore, projector: SessionProjector) -> list[str]:
    async def project(events: Sequence[StoredEvent]) -> None:
        for event in events:
            await projector.apply(event)

    handler = CommandHandler(store, builtin_catalog(), BUILTIN_RUNNERS, project)
    sessions = [new_session_id() for _ in range(3)]
    for index, session_id in enumerate(sessions):
        common = {"tenant": "acme", "subject": "alice", "session_id": session_id}
        await handler.handle(CallTool(**common, tool_name="session_open"))
        await handler.handle(CallTool(**common, tool_name="note_set", arguments={"key": "n", "value": index}))
    return sessions


async def test_a_lost_state_store_is_refilled_from_the_event_store(store: SqlEventStore) -> None:
    views, marker = MemorySessionViewStore(), MemoryMarker()
    projector = SessionProjector(views)
    watch = StateLossWatch(marker, store, [projector.apply])
    assert not await watch.check()
    await _history(store, projector)
    before = await views.all_views()

    await views.clear()
    marker.forget()
    replayed = await watch.check()

    assert replayed
    assert await views.all_views() == before
    assert len(before) == 3


async def test_an_unchanged_marker_means_no_replay(store: SqlEventStore) -> None:
    marker = MemoryMarker()
    watch = StateLossWatch(marker, store, [SessionProjector(MemorySessionViewStore()).apply])
    assert not await watch.check()
    assert not await watch.check()
    assert watch.replays == 0


async def test_a_marker_written_by_another_worker_after_a_loss_still_means_replay(
    store: SqlEventStore,
) -> None:
    marker = MemoryMarker()
    watch = StateLossWatch(marker, store, [SessionProjector(MemorySessionViewStore()).apply])
    await watch.check()
    marker.forget()
    await marker.claim("written-by-a-worker-that-started-after-the-loss")
    assert await watch.check()
    assert not await watch.check()


async def test_a_replay_that_fails_is_tried_again_at_the_next_check(store: SqlEventStore) -> None:
    views, marker = MemorySessionViewStore(), MemoryMarker()
    projector = SessionProjector(views)
    await _history(store, projector)
    expected = await views.all_views()
    calls = 0

    async def flaky(event: StoredEvent) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("state store went away again")
        return await projector.apply(event)

    watch = StateLossWatch(marker, store, [flaky])
    await watch.check()
    await views.clear()
    marker.forget()
    with pytest.raises(ConnectionError):
        await watch.check()
    assert await watch.check()
    assert await views.all_views() == expected


async def _folded_everything(store: SqlEventStore) -> list[SessionView]:
    views = MemorySessionViewStore()
    await SessionProjector(views).rebuild(store)
    return await views.all_views()


async def test_a_view_lost_with_the_state_store_is_folded_again_when_its_next_event_arrives(
    store: SqlEventStore,
) -> None:
    await _history(store, SessionProjector(MemorySessionViewStore()))
    views = MemorySessionViewStore()
    projector = SessionProjector(views, store=store)
    last = (await store.read_all())[-1]
    assert await projector.apply(last)
    (view,) = await views.all_views()
    expected = next(v for v in await _folded_everything(store) if v.session_id == view.session_id)
    assert view == expected


async def test_an_event_ahead_of_a_view_being_refilled_does_not_skip_the_events_between(
    store: SqlEventStore,
) -> None:
    await _history(store, SessionProjector(MemorySessionViewStore()))
    views = MemorySessionViewStore()
    projector = SessionProjector(views, store=store)
    stream = (await store.read_all())[-1].stream_id
    events = await store.read_stream(stream)
    for stored in events[:2]:  # a replay has refilled the view this far...
        await projector.apply(stored)
    assert await projector.apply(events[-1])  # ...when the live projector brings a later event
    assert await views.all_views() == [v for v in await _folded_everything(store) if v.session_id in stream]


async def test_without_the_store_a_projector_folds_what_it_is_given(store: SqlEventStore) -> None:
    await _history(store, SessionProjector(MemorySessionViewStore()))
    views = MemorySessionViewStore()
    stream = (await store.read_all())[-1].stream_id
    events = await store.read_stream(stream)
    projector = SessionProjector(views)
    for stored in [*events[:2], events[-1]]:
        await projector.apply(stored)
    (view,) = await views.all_views()
    assert view.notes == {}


async def test_a_plan_view_that_missed_events_is_folded_again_from_its_stream(store: SqlEventStore) -> None:
    catalog = {"work": tool("work")}
    tasks = [
        {"id": "a", "tool_name": "work", "parameters": {"label": "a"}},
        {"id": "b", "tool_name": "work", "parameters": {"label": "b"}, "dependencies": ["a"]},
    ]
    stream = await accept(store, catalog, {"plan_id": "v", "tasks": tasks})
    await executor(store, catalog, Recorder().runners(["work"])).run(stream)
    everything = MemoryPlanViewStore()
    await PlanProjector(everything).rebuild(store)
    events = await store.read_stream(stream)

    views = MemoryPlanViewStore()
    projector = PlanProjector(views, store=store)
    await projector.apply(events[0])  # accepted; the events after it were lost with the state store
    assert await projector.apply(events[-1])
    assert await views.get("t", "v") == await everything.get("t", "v")
