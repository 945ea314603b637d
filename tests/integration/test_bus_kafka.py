"""KafkaBus on a real broker: the MessageBus contract, plus what only Kafka shows (other
processes' members, a crashed member's uncommitted message, broadcasts starting at the end)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]

from mcp_ledger.producers.kafka import PARTITIONS, KafkaBus
from mcp_ledger.producers.ports import BusError, Message
from tests.contracts.bus_contract import BusContract, BusFactory, Inbox, fresh

pytestmark = pytest.mark.integration

# A group's first join and each rebalance take seconds; a crashed member's partitions move
# once its consumer has left (or its 6 s session expired) and the survivors rejoined.
WAIT_SECONDS = 30.0
CRASH_WAIT_SECONDS = 40.0


@pytest.fixture
async def kafka_topics(services_env: dict[str, str]) -> AsyncIterator[list[str]]:
    """Names of the topics a test made: deleted after it (after its buses stopped, which
    depend on this fixture, so no member recreates one by asking for it)."""
    topics: list[str] = []
    yield topics
    admin = AIOKafkaAdminClient(bootstrap_servers=services_env["LEDGER_BUS"].removeprefix("kafka://"))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if gone := sorted(set(topics) & existing):
            await admin.delete_topics(gone)
    finally:
        await admin.close()


@pytest.fixture
async def kafka_buses(
    services_env: dict[str, str], kafka_topics: list[str]
) -> AsyncIterator[Callable[[], KafkaBus]]:
    """Makes buses on the test Kafka; stops them all after the test."""
    made: list[KafkaBus] = []

    def make() -> KafkaBus:
        made.append(KafkaBus.from_url(services_env["LEDGER_BUS"], client_id="mcp-ledger-tests"))
        return made[-1]

    yield make
    await asyncio.gather(*(bus.stop(drain_timeout=1.0) for bus in made))


class TestKafkaBus(BusContract):
    delivery_timeout = WAIT_SECONDS

    @pytest.fixture
    def make_bus(self, kafka_buses: Callable[[], KafkaBus]) -> BusFactory:
        return kafka_buses

    @pytest.fixture
    def topic(self, kafka_topics: list[str]) -> str:
        kafka_topics.append(fresh("topic"))
        return kafka_topics[-1]

    async def test_a_broadcast_subscriber_does_not_see_what_was_published_before_it_started(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        publisher, late, inbox = make_bus(), make_bus(), self.inbox()
        await publisher.start()
        await publisher.publish(topic, "one-key", b"before")
        late.subscribe(topic, inbox, group=None)
        await late.start()
        await publisher.publish(topic, "one-key", b"after")
        await inbox.wait_for_count(1)
        # One key, one partition: had "before" been delivered, it would have come first.
        assert inbox.values() == [b"after"]

    async def test_a_message_published_by_one_bus_reaches_a_group_member_on_another(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        publisher, worker, inbox = make_bus(), make_bus(), self.inbox()
        worker.subscribe(topic, inbox, group=fresh("group"))
        await asyncio.gather(publisher.start(), worker.start())
        await publisher.publish(topic, "session-1", b"payload", {"command_id": "c1"})
        await inbox.wait_for_count(1)
        assert inbox.messages == [Message(topic, "session-1", b"payload", {"command_id": "c1"})]

    async def test_the_uncommitted_message_of_a_crashed_member_goes_to_another_member(
        self, kafka_buses: Callable[[], KafkaBus], topic: str
    ) -> None:
        doomed_bus, survivor_bus = kafka_buses(), kafka_buses()
        inbox, group = Inbox(CRASH_WAIT_SECONDS), fresh("group")
        record_doomed = inbox.member("doomed")

        async def never_finishes(message: Message) -> None:
            await record_doomed(message)
            await asyncio.Event().wait()

        doomed_bus.subscribe(topic, never_finishes, group=group)
        survivor_bus.subscribe(topic, inbox.member("survivor"), group=group)
        await asyncio.gather(doomed_bus.start(), survivor_bus.start())
        async with asyncio.timeout(CRASH_WAIT_SECONDS):
            while not inbox.values(member="doomed"):  # until a message lands on the doomed member
                handled = len(inbox.deliveries)
                await survivor_bus.publish(topic, fresh("key"), fresh("value").encode())
                await inbox.wait_for_count(handled + 1)
        (stuck,) = inbox.values(member="doomed")
        # The handler never finishes: after the drain timeout it is cancelled, nothing committed.
        await asyncio.wait_for(doomed_bus.stop(drain_timeout=0.5), CRASH_WAIT_SECONDS)
        await inbox.wait_until(lambda: stuck in inbox.values(member="survivor"))

    async def test_a_partitions_offset_is_not_committed_past_a_record_still_in_hand(
        self, kafka_buses: Callable[[], KafkaBus], topic: str
    ) -> None:
        # "slow" and the other keys share one partition; the others finish while "slow" is in
        # hand, yet the commit must stop before it, so the next member of the group gets it.
        slow_key = "slow"
        partition = _partition(slow_key)
        others = [key for key in (f"key-{i}" for i in range(500)) if _partition(key) == partition][:5]
        doomed_bus, inbox, group = kafka_buses(), Inbox(CRASH_WAIT_SECONDS), fresh("group")
        record_doomed = inbox.member("doomed")

        async def slow_never_finishes(message: Message) -> None:
            await record_doomed(message)
            if message.key == slow_key:
                await asyncio.Event().wait()

        doomed_bus.subscribe(topic, slow_never_finishes, group=group, in_flight=4)
        await doomed_bus.start()
        await doomed_bus.publish(topic, slow_key, b"slow")
        for key in others:
            await doomed_bus.publish(topic, key, key.encode())
        await inbox.wait_until(lambda: len(inbox.values(member="doomed")) == 1 + len(others))
        await asyncio.wait_for(doomed_bus.stop(drain_timeout=0.5), CRASH_WAIT_SECONDS)
        survivor_bus = kafka_buses()
        survivor_bus.subscribe(topic, inbox.member("survivor"), group=group)
        await survivor_bus.start()
        await inbox.wait_until(lambda: b"slow" in inbox.values(member="survivor"))


def _partition(key: str) -> int:
    """Kafka's default partition of a key (murmur2, as the producer computes it)."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % PARTITIONS


async def test_a_kafka_url_may_name_several_bootstrap_servers_and_any_reachable_one_serves(
    services_env: dict[str, str], kafka_topics: list[str]
) -> None:
    # The first server refuses connections: only a bus that parsed and tried the second works.
    bus = KafkaBus.from_url(f"kafka://127.0.0.1:1,{services_env['LEDGER_BUS'].removeprefix('kafka://')}")
    topic, inbox = fresh("topic"), Inbox(WAIT_SECONDS)
    kafka_topics.append(topic)
    bus.subscribe(topic, inbox, group=fresh("group"))
    try:
        await asyncio.wait_for(bus.start(), WAIT_SECONDS)
        await bus.publish(topic, "k", b"through the second server")
        await inbox.wait_for_count(1)
    finally:
        await bus.stop(drain_timeout=1.0)
    assert inbox.values() == [b"through the second server"]


def test_a_url_that_is_not_kafka_or_names_no_server_is_refused() -> None:
    with pytest.raises(ValueError, match="kafka://"):
        KafkaBus.from_url("redis://127.0.0.1:6379")
    with pytest.raises(ValueError, match="kafka://"):
        KafkaBus.from_url("kafka://")


async def test_starting_without_a_reachable_broker_raises_bus_error() -> None:
    bus = KafkaBus("127.0.0.1:1")
    with pytest.raises(BusError):
        await asyncio.wait_for(bus.start(), WAIT_SECONDS)
    await bus.stop(drain_timeout=0)
