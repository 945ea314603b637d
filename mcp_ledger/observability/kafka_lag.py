"""Kafka consumer lag: end offset minus the group's committed offset, per topic and group.

Owns one admin client (partitions, committed offsets) and one group-less consumer (end offsets), both
opened lazily and closed with the sampler. A partition the group never committed counts from
its beginning offset (auto_offset_reset=earliest: that is where the group will start).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]


async def _partitions(admin: Any, topic: str) -> list[Any]:
    (described,) = await admin.describe_topics([topic])
    if described["error_code"]:
        return []  # not created yet: nothing to lag behind
    return [TopicPartition(topic, p) for p in sorted(int(p["partition"]) for p in described["partitions"])]


class KafkaLag:
    """Measures the lag of consumer groups on their topics."""

    def __init__(self, servers: Sequence[str], subscriptions: Sequence[tuple[str, str]]) -> None:
        self._servers = list(servers)
        self._subscriptions = list(subscriptions)  # (topic, group)
        self._admin: Any = None
        self._consumer: Any = None

    async def _clients(self) -> tuple[Any, Any]:
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._servers, client_id="mcp-ledger-lag")
            await self._admin.start()
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self._servers, enable_auto_commit=False)
            await self._consumer.start()
        return self._admin, self._consumer

    async def measure(self) -> dict[tuple[str, str], int]:
        """(topic, group) -> messages not yet committed by the group.

        Raises:
            KafkaError: Kafka did not answer.
        """
        admin, consumer = await self._clients()
        lags: dict[tuple[str, str], int] = {}
        for topic, group in self._subscriptions:
            partitions = await _partitions(admin, topic)
            if not partitions:
                continue
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            total = 0
            for partition in partitions:
                mark = committed.get(partition)
                offset = mark.offset if mark is not None and mark.offset >= 0 else starts[partition]
                total += max(0, ends[partition] - offset)
            lags[(topic, group)] = total
        return lags

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
