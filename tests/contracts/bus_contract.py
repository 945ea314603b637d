"""The MessageBus contract: the behaviour every bus adapter must show.

Owns the shared tests, written against the port only, and the Inbox helper that records what a
handler saw. Does not own buses: a subclass named Test<Adapter> provides a `make_bus` factory
(it stops what it made) and `delivery_timeout`, the bound on any single wait. Every test uses
fresh topic and group names, so a Kafka cluster may be shared between tests and runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import ClassVar

import pytest

from mcp_ledger.producers.ports import BusError, Handler, Message, MessageBus, Outgoing

BusFactory = Callable[[], MessageBus]


def fresh(kind: str) -> str:
    return f"test-{kind}-{uuid.uuid4().hex[:12]}"


class Inbox:
    """Records every message its handlers are given; tests wait on what it holds.

    The inbox itself is a handler; `member(name)` gives a handler per member of a group, so
    one inbox can say which member handled what. Every wait gives up after `wait_seconds`.
    """

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.deliveries: list[tuple[str, Message]] = []
        self._changed = asyncio.Condition()

    async def __call__(self, message: Message) -> None:
        await self._record("", message)

    def member(self, name: str) -> Handler:
        async def handle(message: Message) -> None:
            await self._record(name, message)

        return handle

    async def _record(self, member: str, message: Message) -> None:
        async with self._changed:
            self.deliveries.append((member, message))
            self._changed.notify_all()

    @property
    def messages(self) -> list[Message]:
        return [message for _, message in self.deliveries]

    def values(self, *, key: str | None = None, member: str | None = None) -> list[bytes]:
        return [
            message.value
            for name, message in self.deliveries
            if (key is None or message.key == key) and (member is None or name == member)
        ]

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once `condition()` holds; raise TimeoutError if it does not in time."""
        async with asyncio.timeout(self.wait_seconds), self._changed:
            await self._changed.wait_for(condition)

    async def wait_for_count(self, count: int) -> None:
        await self.wait_until(lambda: len(self.deliveries) >= count)


def first_seen(values: list[bytes]) -> list[bytes]:
    """The values in the order they were first delivered (at-least-once may repeat some)."""
    return list(dict.fromkeys(values))


class BusContract:
    """Subclasses provide `make_bus` and set `delivery_timeout`."""

    delivery_timeout: ClassVar[float]

    @pytest.fixture
    def make_bus(self) -> BusFactory:
        raise NotImplementedError

    def inbox(self) -> Inbox:
        return Inbox(self.delivery_timeout)

    @pytest.fixture
    def topic(self) -> str:
        return fresh("topic")

    async def test_a_published_message_reaches_a_group_subscriber_whole(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        bus, inbox = make_bus(), self.inbox()
        bus.subscribe(topic, inbox, group=fresh("group"))
        await bus.start()
        await bus.publish(topic, "session-1", b"\x00payload\xff", {"command_id": "c1", "trace": "t"})
        await inbox.wait_for_count(1)
        assert inbox.messages == [
            Message(topic, "session-1", b"\x00payload\xff", {"command_id": "c1", "trace": "t"})
        ]

    async def test_messages_with_one_key_are_handled_in_publish_order(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        bus, inbox = make_bus(), self.inbox()
        bus.subscribe(topic, inbox, group=fresh("group"), concurrency=4)
        await bus.start()
        keys = [f"key-{i}" for i in range(10)]
        for i in range(200):
            await bus.publish(topic, keys[i % 10], str(i).encode())
        await inbox.wait_until(lambda: len(set(inbox.values())) == 200)
        for n, key in enumerate(keys):
            assert first_seen(inbox.values(key=key)) == [str(i).encode() for i in range(n, 200, 10)]

    async def test_a_batch_is_handled_in_order_per_key_with_each_message_whole(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        bus, inbox = make_bus(), self.inbox()
        bus.subscribe(topic, inbox, group=fresh("group"), concurrency=4)
        await bus.start()
        keys = [f"key-{i}" for i in range(5)]
        for start in range(0, 100, 25):
            batch = [Outgoing(keys[i % 5], str(i).encode(), {"n": str(i)}) for i in range(start, start + 25)]
            await bus.publish_many(topic, batch)
        await inbox.wait_until(lambda: len(set(inbox.values())) == 100)
        for n, key in enumerate(keys):
            assert first_seen(inbox.values(key=key)) == [str(i).encode() for i in range(n, 100, 5)]
        assert all(m.headers == {"n": m.value.decode()} for m in inbox.messages)

    async def test_a_batch_before_start_is_refused(self, make_bus: BusFactory, topic: str) -> None:
        with pytest.raises(BusError):
            await make_bus().publish_many(topic, [Outgoing("k", b"v")])

    async def test_members_of_one_group_share_the_messages_each_handled_once(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        bus, inbox = make_bus(), self.inbox()
        group = fresh("group")
        bus.subscribe(topic, inbox.member("first"), group=group)
        bus.subscribe(topic, inbox.member("second"), group=group)
        await bus.start()
        await self._settle(bus, topic, inbox, ["first", "second"])
        settled = len(inbox.deliveries)
        sent = [f"m{i}".encode() for i in range(100)]
        for i, value in enumerate(sent):
            await bus.publish(topic, f"key-{i}", value)
        await inbox.wait_for_count(settled + 100)
        shared = [(name, m.value) for name, m in inbox.deliveries[settled:]]
        assert sorted(value for _, value in shared) == sorted(sent)
        assert {name for name, _ in shared} == {"first", "second"}

    async def _settle(self, bus: MessageBus, topic: str, inbox: Inbox, members: list[str]) -> None:
        """Publish probes with fresh keys until every member has handled one: by then each
        holds its share of the partitions, and no member joining late moves them."""
        async with asyncio.timeout(self.delivery_timeout):
            while not all(inbox.values(member=name) for name in members):
                handled = len(inbox.deliveries)
                await bus.publish(topic, fresh("probe"), b"probe")
                await inbox.wait_for_count(handled + 1)

    async def test_a_broadcast_subscriber_sees_everything_published_after_start(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        bus, inbox = make_bus(), self.inbox()
        bus.subscribe(topic, inbox, group=None)
        await bus.start()
        sent = [str(i).encode() for i in range(20)]
        for i, value in enumerate(sent):
            await bus.publish(topic, f"key-{i % 3}", value)
        await inbox.wait_for_count(20)
        assert sorted(inbox.values()) == sorted(sent)

    async def test_two_broadcast_subscribers_each_see_every_message(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        bus, inbox = make_bus(), self.inbox()
        bus.subscribe(topic, inbox.member("first"), group=None)
        bus.subscribe(topic, inbox.member("second"), group=None)
        await bus.start()
        sent = [str(i).encode() for i in range(20)]
        for i, value in enumerate(sent):
            await bus.publish(topic, f"key-{i}", value)
        await inbox.wait_for_count(40)
        assert sorted(inbox.values(member="first")) == sorted(sent)
        assert sorted(inbox.values(member="second")) == sorted(sent)

    async def test_a_message_whose_handler_failed_is_delivered_again_in_order(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        attempts, handled = self.inbox(), self.inbox()

        async def fails_once_on_3(message: Message) -> None:
            await attempts(message)
            if message.value == b"3" and attempts.values().count(b"3") == 1:
                raise RuntimeError("transient failure")
            await handled(message)

        bus = make_bus()
        bus.subscribe(topic, fails_once_on_3, group=fresh("group"))
        await bus.start()
        for i in range(10):
            await bus.publish(topic, "session-1", str(i).encode())
        await handled.wait_until(lambda: b"9" in handled.values())
        assert attempts.values().count(b"3") == 2
        assert handled.values() == [str(i).encode() for i in range(10)]

    async def test_a_slow_message_holds_back_only_its_own_key(self, make_bus: BusFactory, topic: str) -> None:
        # One member owns every partition: without lanes, the others would queue behind "slow".
        release, handled = asyncio.Event(), self.inbox()

        async def slow_on_first(message: Message) -> None:
            if message.value == b"slow-0":
                await release.wait()
            await handled(message)

        bus = make_bus()
        bus.subscribe(topic, slow_on_first, group=fresh("group"), in_flight=4)
        await bus.start()
        await bus.publish(topic, "slow", b"slow-0")
        await bus.publish(topic, "slow", b"slow-1")
        others = [f"other-{i}".encode() for i in range(30)]
        for i, value in enumerate(others):
            await bus.publish(topic, f"key-{i}", value)
        await handled.wait_until(lambda: set(others) <= set(handled.values()))
        assert b"slow-0" not in handled.values()
        assert b"slow-1" not in handled.values()
        release.set()
        await handled.wait_until(lambda: b"slow-1" in handled.values())
        assert first_seen(handled.values(key="slow")) == [b"slow-0", b"slow-1"]

    async def test_with_lanes_one_key_is_never_handled_twice_at_once_and_keeps_its_order(
        self, make_bus: BusFactory, topic: str
    ) -> None:
        handled, busy, overlaps = self.inbox(), set[str](), list[str]()

        async def tracked(message: Message) -> None:
            if message.key in busy:
                overlaps.append(message.key)
            busy.add(message.key)
            await asyncio.sleep(0.001)
            busy.discard(message.key)
            await handled(message)

        bus = make_bus()
        bus.subscribe(topic, tracked, group=fresh("group"), concurrency=2, in_flight=8)
        await bus.start()
        keys = [f"key-{i}" for i in range(6)]
        await bus.publish_many(topic, [Outgoing(keys[i % 6], str(i).encode()) for i in range(120)])
        await handled.wait_until(lambda: len(set(handled.values())) == 120)
        assert overlaps == []
        for n, key in enumerate(keys):
            assert first_seen(handled.values(key=key)) == [str(i).encode() for i in range(n, 120, 6)]

    async def test_publish_before_start_is_refused(self, make_bus: BusFactory, topic: str) -> None:
        bus = make_bus()
        with pytest.raises(BusError):
            await bus.publish(topic, "k", b"v")

    async def test_subscribe_after_start_is_refused(self, make_bus: BusFactory, topic: str) -> None:
        bus = make_bus()
        await bus.start()
        with pytest.raises(BusError):
            bus.subscribe(topic, self.inbox(), group=None)
