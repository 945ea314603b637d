"""The Kafka message bus: FastStream's KafkaBroker for publishing and group subscriptions,
a plain aiokafka consumer for each broadcast subscription.

Owns the mapping of the MessageBus port onto Kafka: topics created with PARTITIONS partitions
before anything uses them (so groups and broadcasts agree on partitioning), durable publishing
(acks=all, idempotent), offsets committed only after the handler succeeded, redelivery of a
failed message by seeking back to it with backoff, and broadcast consumers that start at the end
of every partition. Does not own serialisation (values are bytes), retention, or cluster settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code  # type: ignore[import-untyped]
from faststream import AckPolicy
from faststream.exceptions import IncorrectState, NackMessage
from faststream.kafka import KafkaBroker, KafkaMessage, Topic
from faststream.message import StreamMessage

from mcp_ledger.producers.inprocess import FIRST_RETRY_DELAY, MAX_RETRY_DELAY, deliver, retry_delay
from mcp_ledger.producers.ports import BusError, Handler, Message

_log = logging.getLogger(__name__)

PARTITIONS = 8
REPLICATION_FACTOR = 1
# The broker's group.min.session.timeout.ms: a crashed member's partitions move after 6 s.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1500
METADATA_TIMEOUT = 10.0


class KafkaBus:
    """A MessageBus on Kafka; messages are keyed records, partitioned by Kafka's murmur2 of the key."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "mcp-ledger") -> None:
        self._servers = bootstrap_servers.split(",")
        self._client_id = client_id
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
        )
        self._broadcasts: list[_Broadcast] = []
        self._topics: set[str] = set()
        self._created: set[str] = set()
        self._admin: Any = None
        self._started = False
        self._running = False

    @classmethod
    def from_url(cls, url: str, *, client_id: str = "mcp-ledger") -> KafkaBus:
        """A bus for `kafka://host:port[,host2:port]`.

        Raises:
            ValueError: the URL is not a kafka:// URL with at least one server.
        """
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.netloc:
            raise ValueError(f"expected kafka://host:port[,host:port], got {url!r}")
        return cls(parts.netloc, client_id=client_id)

    def subscribe(self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1) -> None:
        """Register a handler; see MessageBus.subscribe. A group subscription becomes
        `concurrency` members of the Kafka consumer group, each handling its partitions in order.

        Raises:
            BusError: the bus has already started.
        """
        if self._started:
            raise BusError("subscribe() must be called before start()")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._topics.add(topic)
        if group is None:
            self._broadcasts.append(_Broadcast(topic, handler, concurrency))
            return
        # Separate one-consumer subscribers rather than max_workers: FastStream's concurrent
        # subscriber leaves the group before its in-flight handlers finish and commit.
        for _ in range(concurrency):
            subscriber = self._broker.subscriber(
                Topic(topic, declare=False),  # created by start() with PARTITIONS partitions
                group_id=group,
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.NACK_ON_ERROR,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            )
            subscriber(_group_member(handler), decoder=_undecoded)

    def _broadcast_consumer(self) -> Any:
        return AIOKafkaConsumer(
            bootstrap_servers=self._servers,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )

    async def start(self) -> None:
        """Create the subscribed topics, start the broker and the broadcast consumers.

        Raises:
            BusError: Kafka is unreachable or a topic could not be created.
        """
        if self._started:
            raise BusError("the bus has already started")
        self._started = True
        try:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id=self._client_id)
            await self._admin.start()
            await self._create_topics(self._topics)
            await self._broker.start()
            for broadcast in self._broadcasts:
                await broadcast.start(self._broadcast_consumer(), await self._partitions_of(broadcast.topic))
        except (KafkaError, TimeoutError, BusError) as exc:
            await self._close(drain_timeout=0)
            raise BusError(f"cannot start the Kafka bus on {self._servers}: {exc!r}") from exc
        self._running = True

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
                await asyncio.sleep(FIRST_RETRY_DELAY)

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish and wait for every in-sync replica to have it; see MessageBus.publish.

        Raises:
            BusError: the bus is not running, or Kafka did not acknowledge the message.
        """
        if not self._running:
            raise BusError("publish() needs a running bus: call start() first")
        try:
            # Kafka would auto-create an unknown topic with its default partition count.
            await self._create_topics([topic])
            await self._broker.publish(value, topic, key=key.encode(), headers=dict(headers or {}))
        except (KafkaError, IncorrectState) as exc:
            raise BusError(f"cannot publish to {topic!r}: {exc!r}") from exc

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Let in-flight handlers finish (up to `drain_timeout` seconds, then cancel them
        uncommitted), leave the groups and disconnect."""
        await self._close(drain_timeout)
        self._running = False

    async def _close(self, drain_timeout: float) -> None:
        # FastStream reads its graceful timeout when it stops, not when it is built.
        self._broker.config.broker_config.graceful_timeout = drain_timeout
        await asyncio.gather(
            self._broker.stop(), *(broadcast.stop(drain_timeout) for broadcast in self._broadcasts)
        )
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


def _to_message(record: Any) -> Message:
    headers = {
        name: value.decode(errors="replace")
        for name, value in record.headers
        # FastStream marks a bytes body with an empty content-type: its envelope, not our header.
        if not (name == "content-type" and not value)
    }
    return Message(record.topic, (record.key or b"").decode(errors="replace"), record.value or b"", headers)


async def _undecoded(message: StreamMessage[Any]) -> Any:
    # FastStream would otherwise try json.loads on every value; handlers get the bytes.
    return message.body


def _group_member(handler: Handler) -> Callable[[KafkaMessage], Awaitable[None]]:
    """The FastStream handler of one group member: on failure, back off, then nack.

    Nacking seeks the partition back to the failed record, so it comes next again and the
    partition stays in order; the offset is committed only after the handler succeeded.
    """
    failing: dict[int, tuple[int, int]] = {}  # partition -> (offset, failures in a row)

    async def consume(message: KafkaMessage) -> None:
        record: ConsumerRecord = message.raw_message
        try:
            await handler(_to_message(record))
        except Exception as exc:
            offset, failures = failing.get(record.partition, (record.offset, 0))
            failures = failures + 1 if offset == record.offset else 1
            failing[record.partition] = (record.offset, failures)
            _log.exception(
                "handler failed on %s partition %d offset %d (failure %d); redelivering",
                record.topic,
                record.partition,
                record.offset,
                failures,
            )
            await asyncio.sleep(retry_delay(failures))
            raise NackMessage from exc
        failing.pop(record.partition, None)

    return consume


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
                await asyncio.sleep(MAX_RETRY_DELAY)
                continue
            self._handling = True
            # Partitions concurrently (bounded by the slots), each partition's records in order.
            await asyncio.gather(*(self._handle(records) for records in batches.values()))
            self._handling = False

    async def _handle(self, records: list[Any]) -> None:
        for record in records:
            await deliver(self._handler, _to_message(record), self._slots)

    async def stop(self, drain_timeout: float) -> None:
        self._closing = True
        if self._task is not None:
            if self._handling:
                await asyncio.wait({self._task}, timeout=drain_timeout)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
