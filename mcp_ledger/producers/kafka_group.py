"""One member of a Kafka consumer group: its records handled in key lanes, offsets in order.

Owns what a member does with the records FastStream hands it: each record runs in its key's
lane (lanes.py), so records of different keys run at once (up to `in_flight`) and records of
one key in order; a failed record is retried in its lane with backoff until it succeeds or its
partition moves away; a partition's offset is committed only up to the first record not yet
finished, so a crash or a rebalance never skips an unhandled record (its next owner handles
again whatever was not committed, and handlers are idempotent). Does not own connecting,
topics or publishing (kafka.py).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition  # type: ignore[import-untyped]
from aiokafka.errors import CommitFailedError, KafkaError  # type: ignore[import-untyped]
from faststream.kafka import KafkaMessage

from mcp_ledger.producers.lanes import KeyLanes
from mcp_ledger.producers.ports import Handler, Message
from mcp_ledger.producers.redelivery import retry_delay

_log = logging.getLogger(__name__)

# How long a rebalance waits for the records in hand to finish (and commit) before moving the
# partitions anyway; kafka.py gives the group a little longer than that for the member to rejoin.
REVOKE_WAIT = 10.0


def to_message(record: Any) -> Message:
    """The bus's Message of a Kafka record."""
    headers = {
        name: value.decode(errors="replace")
        for name, value in record.headers
        # FastStream marks a bytes body with an empty content-type: its envelope, not our header.
        if not (name == "content-type" and not value)
    }
    return Message(record.topic, (record.key or b"").decode(errors="replace"), record.value or b"", headers)


class _PartitionOffsets:
    """The records of one partition taken and not yet committed, in the order taken."""

    def __init__(self) -> None:
        self._open: dict[int, bool] = {}  # offset -> finished, in offset order
        self.committed = -1
        self.revoked = False

    def taken(self, offset: int) -> None:
        self._open[offset] = False

    def finished(self, offset: int) -> int | None:
        """Mark a record finished; the offset to commit now (one past the last record of the
        finished run at the head), or None while an earlier record is still in hand."""
        self._open[offset] = True
        upto = None
        for taken, done in list(self._open.items()):
            if not done:
                break
            del self._open[taken]
            upto = taken + 1
        return upto


class GroupMember(ConsumerRebalanceListener):  # type: ignore[misc]
    """One consumer of a group; records of different keys handled at once, up to `in_flight`."""

    def __init__(self, handler: Handler, in_flight: int = 1) -> None:
        self._handler = handler
        self._lanes = KeyLanes(in_flight)
        self._partitions: dict[TopicPartition, _PartitionOffsets] = {}
        self._commits = asyncio.Lock()
        self._closing = False

    async def consume(self, message: KafkaMessage) -> None:
        """FastStream's handler (ack policy MANUAL): the record goes into its key's lane, and
        this returns once it is in hand, so FastStream fetches the next while it runs."""
        record: Any = message.raw_message  # one record: the subscriber is not a batch one
        partition = TopicPartition(record.topic, record.partition)
        offsets = self._partitions.setdefault(partition, _PartitionOffsets())
        offsets.taken(record.offset)
        if self._closing:
            # Never finished, so nothing from here on is committed: the next owner handles it.
            return
        key = (record.key or b"").decode(errors="replace")
        await self._lanes.submit(key, partial(self._handle, message.consumer, partition, offsets, record))

    async def _handle(
        self, consumer: Any, partition: TopicPartition, offsets: _PartitionOffsets, record: Any
    ) -> None:
        failures = 0
        while not offsets.revoked:
            try:
                await self._handler(to_message(record))
            except Exception:
                failures += 1
                _log.exception(
                    "handler failed on %s partition %d offset %d (failure %d); redelivering",
                    record.topic,
                    record.partition,
                    record.offset,
                    failures,
                )
                await asyncio.sleep(retry_delay(failures))
            else:
                await self._commit(consumer, partition, offsets, record.offset)
                return

    async def _commit(
        self, consumer: Any, partition: TopicPartition, offsets: _PartitionOffsets, offset: int
    ) -> None:
        upto = offsets.finished(offset)
        if upto is None:
            return
        async with self._commits:
            if offsets.revoked or upto <= offsets.committed:
                return
            try:
                await consumer.commit({partition: upto})
            except CommitFailedError:
                # Expected in a rebalance that moved the partition on (e.g. this member's session
                # lapsed): its next owner handles the records again, and handlers are idempotent.
                _log.warning(
                    "offset %d of %s partition %d not committed: the group rebalanced;"
                    " the new owner redelivers",
                    upto,
                    partition.topic,
                    partition.partition,
                )
            except KafkaError as error:
                # The next record's commit covers this one; until then a crash redelivers it.
                _log.warning("offset %d of %s partition %d not committed yet: %r", upto, *partition, error)
            else:
                offsets.committed = upto

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Let the records in hand finish and commit first: otherwise the partitions' next
        owners would handle them at the same time."""
        if not await self._lanes.drain(REVOKE_WAIT):
            _log.warning("handing over partitions %s with records still being handled", revoked)
        for partition in revoked:
            offsets = self._partitions.pop(partition, None)
            if offsets is not None:
                offsets.revoked = True

    async def on_partitions_assigned(self, assigned: Any) -> None:
        for partition in assigned:  # fetching resumes from the committed offset
            self._partitions[partition] = _PartitionOffsets()

    async def drain(self, wait_s: float) -> None:
        """Take no more records, wait up to `wait_s` seconds for those in hand (committing
        each as it finishes), then cancel the rest uncommitted."""
        self._closing = True
        if not await self._lanes.drain(wait_s):
            _log.warning("stopping with %d records in hand not committed", len(self._lanes))
        await self._lanes.cancel()
