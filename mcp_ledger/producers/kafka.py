"""The Kafka message bus: FastStream's KafkaBroker for publishing and group subscriptions,
a plain aiokafka consumer for each broadcast subscription.

Owns the mapping of the MessageBus port onto Kafka: topics created with PARTITIONS partitions
before anything uses them (so groups and broadcasts agree on partitioning), durable publishing
(acks=all, idempotent), group members whose records run in key lanes with offsets committed
in order (kafka_group.py), and broadcast consumers that start at the end
of every partition. Does not own serialisation (values are bytes), retention, or cluster settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from faststream import AckPolicy
from faststream.exceptions import IncorrectState
from faststream.kafka import KafkaBroker, Topic
from faststream.message import StreamMessage

from mcp_ledger.producers.kafka_group import GroupMember, to_message
from mcp_ledger.producers.ports import BusError, Handler, Outgoing
from mcp_ledger.producers.redelivery import deliver

_log = logging.getLogger(__name__)

PARTITIONS = 8
REPLICATION_FACTOR = 1
# Defaults of LEDGER_KAFKA_SESSION_TIMEOUT_MS / _HEARTBEAT_INTERVAL_MS. A crashed member's
# partitions (and the calls waiting on their records) move only when its session times out; the
# broker refuses a timeout below its group.min.session.timeout.ms (ours: 1 s, Kafka's: 6 s).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1500
# The group waits a little longer than a member's REVOKE_WAIT (kafka_group.py) for it to rejoin.
REBALANCE_TIMEOUT_MS = 15000
METADATA_TIMEOUT = 10.0
METADATA_POLL_INTERVAL = 0.05
FETCH_RETRY_DELAY = 1.0


class KafkaBus:
    """A MessageBus on Kafka; messages are keyed records, partitioned by Kafka's murmur2 of the key."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "mcp-ledger",
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    ) -> None:
        self._servers = bootstrap_servers.split(",")
        self._client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._broker = KafkaBroker(
            self._servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,
            # Otherwise FastStream adds a correlation_id header; Message.headers are the caller's.
            id_generator=lambda: "",
            logger=_log,
            # FastStream logs every message received and processed: debug noise, not service news.
            log_level=logging.DEBUG,
            # No dependency injection: resolving the handler's message parameter ran a sync
            # function in a worker thread for every record (a thread hop and ~1/5 of a worker's
            # CPU per call); the decoder hands the handler the message itself instead.
            apply_types=False,
        )
        self._members: list[tuple[str, str, GroupMember]] = []  # (topic, group, member)
        self._broadcasts: list[_Broadcast] = []
        self._created: set[str] = set()
        self._admin: Any = None
        self._started = False
        self._running = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        client_id: str = "mcp-ledger",
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
        heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    ) -> KafkaBus:
        """A bus for `kafka://host:port[,host2:port]`.

        Raises:
            ValueError: the URL is not a kafka:// URL with at least one server.
        """
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.netloc:
            raise ValueError(f"expected kafka://host:port[,host:port], got {url!r}")
        return cls(
            parts.netloc,
            client_id=client_id,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )

    def subscribe(
        self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1, in_flight: int = 1
    ) -> None:
        """Register a handler; see MessageBus.subscribe. A group subscription becomes
        `concurrency` members of the Kafka consumer group, each handling up to `in_flight`
        records of different keys of its partitions at once (kafka_group.py). A broadcast
        handles up to `concurrency` partitions at once, each in order.

        Raises:
            BusError: the bus has already started.
        """
        if self._started:
            raise BusError("subscribe() must be called before start()")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        if group is None:
            self._broadcasts.append(_Broadcast(topic, handler, concurrency))
        else:
            # One-consumer members rather than FastStream's max_workers: its concurrent subscriber
            # leaves the group before its in-flight handlers finish and commit, and shares one
            # rebalance listener among its consumers.
            self._members += [(topic, group, GroupMember(handler, in_flight)) for _ in range(concurrency)]

    async def start(self) -> None:
        """Create the subscribed topics, connect, and return once every group member has its
        partitions and every broadcast consumer its start offsets.

        Raises:
            BusError: Kafka is unreachable or a topic could not be created.
        """
        if self._started:
            raise BusError("the bus has already started")
        self._started = True
        try:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id=self._client_id)
            await self._admin.start()
            await self._create_topics({t for t, _, _ in self._members} | {b.topic for b in self._broadcasts})
            await self._broker.start()
            # Handlers may publish as soon as their member has partitions, before start() returns.
            self._running = True
            await self._start_subscriptions()
        except (KafkaError, TimeoutError, BusError) as exc:
            await self._close(drain_timeout=0)
            raise BusError(f"cannot start the Kafka bus on {self._servers}: {exc!r}") from exc

    async def _start_subscriptions(self) -> None:
        # aiokafka's start() returns once the consumer has joined its group; members started one
        # after another would each trigger a rebalance of their own, so all start together.
        starting = [self._group_subscriber(*member).start() for member in self._members]
        starting += [self._start_broadcast(broadcast) for broadcast in self._broadcasts]
        for outcome in await asyncio.gather(*starting, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    def _group_subscriber(self, topic: str, group: str, member: GroupMember) -> Any:
        subscriber = self._broker.subscriber(
            Topic(topic, declare=False),  # created by start() with PARTITIONS partitions
            group_id=group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            listener=member,
        )
        subscriber(member.consume, decoder=_undecoded)
        return subscriber

    async def _start_broadcast(self, broadcast: _Broadcast) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._servers,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await broadcast.start(consumer, await self._partitions_of(broadcast.topic))

    async def _create_topics(self, topics: Iterable[str]) -> None:
        missing = sorted(set(topics) - self._created)
        if not missing:
            return
        response = await self._admin.create_topics(
            [NewTopic(name, PARTITIONS, REPLICATION_FACTOR) for name in missing]
        )
        for result in response.to_object()["topic_errors"]:
            error = for_code(result["error_code"]) if result["error_code"] else None
            if error is not None and error is not TopicAlreadyExistsError:
                raise BusError(f"cannot create topic {result['topic']!r}: {error.__name__} {result}")
        self._created.update(missing)

    async def _partitions_of(self, topic: str) -> list[int]:
        async with asyncio.timeout(METADATA_TIMEOUT):
            # A topic created a moment ago may be missing from the first metadata answers.
            while True:
                (described,) = await self._admin.describe_topics([topic])
                if not described["error_code"] and described["partitions"]:
                    return sorted(p["partition"] for p in described["partitions"])
                await asyncio.sleep(METADATA_POLL_INTERVAL)

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish and wait for every in-sync replica to have it; see MessageBus.publish.

        Raises:
            BusError: the bus is not running, or Kafka did not acknowledge the message.
        """
        await self.publish_many(topic, [Outgoing(key, value, headers or {})])

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Queue every message on the producer in order, then wait for all acknowledgements:
        one round of produce requests instead of one per message. The producer is idempotent,
        so messages of one partition stay in order through retries; see MessageBus.publish_many.

        Raises:
            BusError: the bus is not running, or Kafka did not acknowledge a message.
        """
        if not self._running:
            raise BusError("publish_many() needs a running bus: call start() first")
        queued: list[asyncio.Future[Any]] = []
        try:
            # Kafka would auto-create an unknown topic with its default partition count.
            await self._create_topics([topic])
            for m in messages:
                key, headers = m.key.encode(), dict(m.headers)
                queued.append(
                    await self._broker.publish(m.value, topic, key=key, headers=headers, no_confirm=True)
                )
            await asyncio.gather(*queued)
        except (KafkaError, IncorrectState) as exc:
            raise BusError(f"cannot publish to {topic!r}: {exc!r}") from exc
        finally:
            for future in queued:  # after a failure, the others' outcomes are not left unretrieved
                future.add_done_callback(_retrieved)

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Let in-flight handlers finish (up to `drain_timeout` seconds, then cancel them
        uncommitted), leave the groups and disconnect."""
        await self._close(drain_timeout)

    async def _close(self, drain_timeout: float) -> None:
        # The members' records run outside FastStream's handler calls, so they drain first,
        # while their consumers can still commit.
        await asyncio.gather(*(member.drain(drain_timeout) for _, _, member in self._members))
        # FastStream reads its graceful timeout when it stops, not when it is built.
        self._broker.config.broker_config.graceful_timeout = drain_timeout
        await asyncio.gather(
            self._broker.stop(), *(broadcast.stop(drain_timeout) for broadcast in self._broadcasts)
        )
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
        self._running = False


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _undecoded(message: StreamMessage[Any]) -> Any:
    # FastStream would otherwise try json.loads on every value; without dependency injection
    # the decoded value is the handler's one argument, so it is the message itself.
    return message


class _Broadcast:
    """One broadcast subscription: a group-less consumer assigned every partition of its topic."""

    def __init__(self, topic: str, handler: Handler, concurrency: int) -> None:
        self.topic = topic
        self._handler = handler
        self._slots = asyncio.Semaphore(concurrency)
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self._handling = False
        self._closing = False

    async def start(self, consumer: Any, partition_ids: list[int]) -> None:
        """Return once every partition's end offset is resolved: later messages are all seen."""
        self._consumer = consumer
        await consumer.start()
        partitions = [TopicPartition(self.topic, i) for i in partition_ids]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._closing:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000)
            except KafkaError:
                _log.exception("broadcast consumer of %s failed to fetch; retrying", self.topic)
                await asyncio.sleep(FETCH_RETRY_DELAY)
                continue
            self._handling = True
            # Partitions concurrently (bounded by the slots), each partition's records in order.
            await asyncio.gather(*(self._handle(records) for records in batches.values()))
            self._handling = False

    async def _handle(self, records: list[Any]) -> None:
        for record in records:
            await deliver(self._handler, to_message(record), self._slots)

    async def stop(self, drain_timeout: float) -> None:
        self._closing = True
        if self._task is not None:
            if self._handling:
                await asyncio.wait({self._task}, timeout=drain_timeout)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
