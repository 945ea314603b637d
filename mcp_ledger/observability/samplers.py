"""Gauges that need a query: outbox backlog, store and projection positions, consumer lag.

A worker runs `Sampler.run` in the background; every `interval` seconds each sample is
taken, and one that fails is logged and left at its last value (a sampler must never take a
worker down). Projection lag is per process: the last stored position minus the highest
position this process's projections applied; across a group, Kafka consumer lag of the
projection group is the exact measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.eventstore.tables import outbox
from mcp_ledger.observability.kafka_lag import KafkaLag
from mcp_ledger.observability.metrics import LedgerMetrics

log = logging.getLogger(__name__)

Sample = Callable[[], Awaitable[None]]


def store_samples(store: EventStore, engine: AsyncEngine, metrics: LedgerMetrics) -> list[Sample]:
    """Outbox backlog, store position and this process's projection lag."""

    async def backlog() -> None:
        async with engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(outbox))
        metrics.outbox_backlog.set(int(count or 0))

    async def positions() -> None:
        last = await store.last_position()
        metrics.store_position.set(last)
        projected = metrics.value("ledger_projected_position")
        if projected:
            metrics.projection_lag.set(max(0.0, last - projected))

    return [backlog, positions]


def lag_sample(lag: KafkaLag, metrics: LedgerMetrics) -> Sample:
    async def consumer_lag() -> None:
        for (topic, group), value in (await lag.measure()).items():
            metrics.consumer_lag.labels(topic=topic, group=group).set(value)

    return consumer_lag


class Sampler:
    """Takes every sample now and then until stopped."""

    def __init__(self, samples: list[Sample], interval: float = 5.0) -> None:
        self._samples = samples
        self._interval = interval

    async def sample_once(self) -> None:
        for sample in self._samples:
            try:
                await sample()
            except Exception:  # boundary: a failed sample keeps its last value
                log.warning("metrics sample %s failed", getattr(sample, "__name__", sample), exc_info=True)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
