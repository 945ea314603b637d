"""The outbox relay: stored events reach the bus, leftovers are swept, rows are cleared."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest

from mcp_ledger.eventstore.ports import CommandKey, NewEvent, StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import Message


@pytest.fixture
async def received() -> AsyncIterator[tuple[InProcessBus, asyncio.Queue[Message]]]:
    bus = InProcessBus()
    inbox: asyncio.Queue[Message] = asyncio.Queue()

    async def collect(message: Message) -> None:
        inbox.put_nowait(message)

    bus.subscribe("events", collect, group="readers")
    await bus.start()
    yield bus, inbox
    await bus.stop()


async def _append(store: SqlEventStore, stream: str, count: int) -> tuple[StoredEvent, ...]:
    events = [NewEvent("Thing", {"n": n}, metadata={"command_id": f"c-{stream}"}) for n in range(count)]
    return (await store.append(stream, 0, events, command=CommandKey("t", "s", f"c-{stream}"))).events


async def _take(inbox: asyncio.Queue[Message], count: int) -> list[Message]:
    async with asyncio.timeout(5):
        return [await inbox.get() for _ in range(count)]


async def test_the_fast_path_publishes_in_order_and_clears_rows_on_flush(
    store: SqlEventStore, received: tuple[InProcessBus, asyncio.Queue[Message]]
) -> None:
    bus, inbox = received
    relay = OutboxRelay(store, bus, "events")
    stored = await _append(store, "s1", 3)
    await relay.publish(stored)
    messages = await _take(inbox, 3)
    assert [m.headers["event_type"] for m in messages] == ["Thing"] * 3
    assert [StoredEvent.from_json(json.loads(m.value)).position for m in messages] == [
        e.position for e in stored
    ]
    assert len(await store.pending_outbox()) == 3  # cleared off the critical path
    assert await relay.flush_marks() == 3
    assert await store.pending_outbox() == []


async def test_the_sweep_publishes_what_a_crash_left_in_the_outbox(
    store: SqlEventStore, received: tuple[InProcessBus, asyncio.Queue[Message]]
) -> None:
    bus, inbox = received
    stored = await _append(store, "crashed", 2)  # appended, never published
    relay = OutboxRelay(store, bus, "events", grace=0.0)
    assert await relay.sweep_once() == 2
    messages = await _take(inbox, 2)
    assert [m.key for m in messages] == ["crashed", "crashed"]
    assert await store.pending_outbox() == []
    assert stored[0].position < stored[1].position


async def test_the_sweep_leaves_fresh_rows_to_the_fast_path(
    store: SqlEventStore, received: tuple[InProcessBus, asyncio.Queue[Message]]
) -> None:
    bus, _ = received
    await _append(store, "fresh", 1)
    assert await OutboxRelay(store, bus, "events", grace=60.0).sweep_once() == 0


async def test_the_relay_loop_clears_rows_and_stops_when_asked(
    store: SqlEventStore, received: tuple[InProcessBus, asyncio.Queue[Message]]
) -> None:
    bus, inbox = received
    relay = OutboxRelay(store, bus, "events")
    stop = asyncio.Event()
    loop = asyncio.create_task(relay.run(stop, interval=0.05))
    await relay.publish(await _append(store, "looped", 2))
    await _take(inbox, 2)
    async with asyncio.timeout(5):
        while await store.pending_outbox():
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)


class _CountingMarks(SqlEventStore):
    """The real SQLite store, counting its mark_published transactions."""

    def __init__(self, store: SqlEventStore) -> None:
        super().__init__(store._engine)
        self.marks: list[list[int]] = []

    async def mark_published(self, positions: Sequence[int]) -> None:
        self.marks.append(sorted(positions))
        await super().mark_published(positions)


async def test_the_relay_loop_clears_what_is_published_close_together_in_one_transaction(
    store: SqlEventStore, received: tuple[InProcessBus, asyncio.Queue[Message]]
) -> None:
    bus, inbox = received
    counting = _CountingMarks(store)
    relay = OutboxRelay(counting, bus, "events", mark_delay=0.5)
    stop = asyncio.Event()
    loop = asyncio.create_task(relay.run(stop, interval=60))
    first = await _append(counting, "first", 1)
    await relay.publish(first)
    await _take(inbox, 1)  # the loop has woken for the first batch by now
    second = await _append(counting, "second", 1)
    await relay.publish(second)
    await _take(inbox, 1)
    async with asyncio.timeout(5):
        while await counting.pending_outbox():
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)
    published = [e.position for e in (*first, *second)]
    assert [m for m in counting.marks if m] == [sorted(published)]
