"""InProcessBus: the MessageBus contract, plus what only the embedded bus shows (draining on
stop, partition concurrency, the redelivery schedule)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from mcp_ledger.producers.inprocess import InProcessBus, partition_of
from mcp_ledger.producers.ports import BusError, Message
from mcp_ledger.producers.redelivery import retry_delay
from tests.contracts.bus_contract import BusContract, BusFactory, fresh

WAIT_SECONDS = 5.0


class TestInProcessBus(BusContract):
    delivery_timeout = WAIT_SECONDS

    @pytest.fixture
    async def make_bus(self) -> AsyncIterator[BusFactory]:
        made: list[InProcessBus] = []

        def make() -> InProcessBus:
            made.append(InProcessBus())
            return made[-1]

        yield make
        for bus in made:
            await bus.stop(drain_timeout=1.0)


def keys_in_distinct_partitions(count: int, partitions: int = 8) -> list[str]:
    found: dict[int, str] = {}
    for i in range(1_000):
        found.setdefault(partition_of(f"key-{i}", partitions), f"key-{i}")
    return list(found.values())[:count]


async def test_stop_drains_the_messages_still_queued() -> None:
    bus, topic, gate = InProcessBus(), fresh("topic"), asyncio.Event()
    handled: list[bytes] = []

    async def slow(message: Message) -> None:
        await gate.wait()
        handled.append(message.value)

    bus.subscribe(topic, slow, group="workers")
    await bus.start()
    for i in range(5):
        await bus.publish(topic, "one-key", str(i).encode())
    stopping = asyncio.create_task(bus.stop(drain_timeout=WAIT_SECONDS))
    gate.set()
    await asyncio.wait_for(stopping, WAIT_SECONDS)
    assert handled == [b"0", b"1", b"2", b"3", b"4"]


async def test_stop_gives_up_on_a_handler_that_never_finishes() -> None:
    bus, topic = InProcessBus(), fresh("topic")
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(message: Message) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    bus.subscribe(topic, stuck, group="workers")
    await bus.start()
    await bus.publish(topic, "k", b"v")
    await asyncio.wait_for(started.wait(), WAIT_SECONDS)
    await asyncio.wait_for(bus.stop(drain_timeout=0.05), WAIT_SECONDS)
    assert cancelled.is_set()


async def test_handlers_may_publish_while_the_bus_drains() -> None:
    bus, first, second = InProcessBus(), fresh("topic"), fresh("topic")
    forwarded: list[bytes] = []

    async def forward(message: Message) -> None:
        await bus.publish(second, message.key, message.value)

    async def record(message: Message) -> None:
        forwarded.append(message.value)

    bus.subscribe(first, forward, group="relay")
    bus.subscribe(second, record, group="sink")
    await bus.start()
    await bus.publish(first, "k", b"v")
    await asyncio.wait_for(bus.stop(drain_timeout=WAIT_SECONDS), WAIT_SECONDS)
    assert forwarded == [b"v"]


async def test_publish_after_stop_is_refused() -> None:
    bus = InProcessBus()
    await bus.start()
    await bus.stop()
    with pytest.raises(BusError):
        await bus.publish(fresh("topic"), "k", b"v")


async def test_different_partitions_are_handled_at_once_up_to_the_concurrency() -> None:
    bus, topic = InProcessBus(), fresh("topic")
    both_inside, met = asyncio.Barrier(2), []

    async def meet(message: Message) -> None:
        await both_inside.wait()  # passes only when two handlers run at the same time
        met.append(message.key)

    bus.subscribe(topic, meet, group="workers", concurrency=2)
    await bus.start()
    for key in keys_in_distinct_partitions(2):
        await bus.publish(topic, key, b"v")
    await asyncio.wait_for(bus.stop(drain_timeout=WAIT_SECONDS), WAIT_SECONDS * 2)
    assert len(met) == 2


async def test_concurrency_one_handles_one_message_at_a_time() -> None:
    bus, topic = InProcessBus(), fresh("topic")
    inside, most = 0, 0

    async def count(message: Message) -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0)  # let any other partition's task run, if it were allowed to
        inside -= 1

    bus.subscribe(topic, count, group="workers", concurrency=1)
    await bus.start()
    for key in keys_in_distinct_partitions(8):
        await bus.publish(topic, key, b"v")
    await asyncio.wait_for(bus.stop(drain_timeout=WAIT_SECONDS), WAIT_SECONDS)
    assert most == 1


def _partitions_in_a_process_with_hash_seed(seed: str, keys: list[str]) -> list[int]:
    program = (
        "import json, sys; from mcp_ledger.producers.inprocess import partition_of; "
        "print(json.dumps([partition_of(key, 8) for key in json.loads(sys.argv[1])]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, json.dumps(keys)],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    found: list[int] = json.loads(done.stdout)
    return found


def test_the_same_key_lands_in_the_same_partition_in_every_process_and_run() -> None:
    # Another process (another hash seed, as after a restart) must agree: str hash() would not.
    keys = [f"tenant:acme:session:{i}" for i in range(50)]
    here = [partition_of(key, 8) for key in keys]
    assert _partitions_in_a_process_with_hash_seed("1", keys) == here
    assert _partitions_in_a_process_with_hash_seed("2", keys) == here
    assert len({partition_of(f"key-{i}", 8) for i in range(100)}) == 8


def test_redelivery_backs_off_from_10_ms_doubling_to_at_most_1_s() -> None:
    assert [retry_delay(n) for n in range(1, 10)] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.0, 1.0]
