"""The embedded message bus: Kafka's delivery semantics on asyncio queues, in one process.

Owns key partitioning (crc32 of the key), the division of a topic's partitions among the
members of a group, key lanes for a subscription that asks for them (lanes.py), redelivery
of a failed message (with the schedule in redelivery.py that the Kafka adapter shares), and
draining on stop. It does not persist anything: what is queued
when the process dies is lost, which only the single-process embedded deployment accepts.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from mcp_ledger.producers.lanes import KeyLanes
from mcp_ledger.producers.ports import BusError, Handler, Message, Outgoing
from mcp_ledger.producers.redelivery import deliver

_log = logging.getLogger(__name__)


def partition_of(key: str, partitions: int) -> int:
    """The partition a key lands in: stable across processes and runs (unlike hash())."""
    return zlib.crc32(key.encode()) % partitions


@dataclass(eq=False)
class _Subscription:
    topic: str
    handler: Handler
    group: str | None
    slots: asyncio.Semaphore
    lanes: KeyLanes | None


class InProcessBus:
    """A MessageBus inside one event loop: one queue and one task per partition per group."""

    def __init__(self, partitions: int = 8) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self._partitions = partitions
        self._subscriptions: list[_Subscription] = []
        # topic -> one list of partition queues per consuming group (a broadcast is a group of one)
        self._routes: dict[str, list[list[asyncio.Queue[Message]]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._accepting = False
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def subscribe(
        self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1, in_flight: int = 1
    ) -> None:
        """Register a handler; see MessageBus.subscribe. With `in_flight` above 1, up to
        concurrency x in_flight messages of different keys are handled at once.

        Raises:
            BusError: the bus has already started.
        """
        if self._started:
            raise BusError("subscribe() must be called before start()")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        at_once = concurrency * in_flight
        lanes = KeyLanes(at_once) if in_flight > 1 else None
        self._subscriptions.append(_Subscription(topic, handler, group, asyncio.Semaphore(at_once), lanes))

    async def start(self) -> None:
        """Give every partition of every consuming group a queue and a task.

        Raises:
            BusError: the bus has already started.
        """
        if self._started:
            raise BusError("the bus has already started")
        self._started = True
        for topic, members in self._consuming_groups():
            queues: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in range(self._partitions)]
            self._routes.setdefault(topic, []).append(queues)
            for partition, queue in enumerate(queues):
                member = members[partition % len(members)]
                self._tasks.append(asyncio.create_task(self._consume(member, queue)))
        self._accepting = True

    def _consuming_groups(self) -> list[tuple[str, list[_Subscription]]]:
        groups: dict[tuple[str, object], list[_Subscription]] = {}
        for subscription in self._subscriptions:
            # Members of one group share the partitions; a broadcast subscription shares with nobody.
            group: object = subscription.group if subscription.group is not None else subscription
            groups.setdefault((subscription.topic, group), []).append(subscription)
        return [(topic, members) for (topic, _), members in groups.items()]

    async def _consume(self, member: _Subscription, queue: asyncio.Queue[Message]) -> None:
        while True:
            message = await queue.get()
            if member.lanes is None:
                await self._deliver(member, message)
            else:
                await member.lanes.submit(message.key, partial(self._deliver, member, message))

    async def _deliver(self, member: _Subscription, message: Message) -> None:
        try:
            await deliver(member.handler, message, member.slots)
        finally:
            self._pending -= 1
            if not self._pending:
                self._idle.set()

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Queue the message for every group consuming the topic; see MessageBus.publish.

        Raises:
            BusError: the bus is not running.
        """
        if not self._accepting:
            raise BusError("publish() needs a running bus: call start() first")
        message = Message(topic, key, value, dict(headers or {}))
        partition = partition_of(key, self._partitions)
        for queues in self._routes.get(topic, ()):
            queues[partition].put_nowait(message)
            self._pending += 1
            self._idle.clear()

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Queue the messages in order; see MessageBus.publish_many.

        Raises:
            BusError: the bus is not running.
        """
        for message in messages:
            await self.publish(topic, message.key, message.value, message.headers)

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Wait up to `drain_timeout` seconds for queued messages to be handled, then stop the tasks.

        Handlers may still publish while the bus drains; what is left after the timeout is lost.
        """
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
        except TimeoutError:
            _log.warning("stopping with %d messages not handled after %.1f s", self._pending, drain_timeout)
        self._accepting = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for subscription in self._subscriptions:
            if subscription.lanes is not None:
                await subscription.lanes.cancel()
