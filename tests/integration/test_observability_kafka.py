"""Traces and consumer lag on the real broker: traceparent travels in Kafka record headers,
and the lag sampler reads end offsets against a group's committed offsets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from mcp_ledger.observability.kafka_lag import KafkaLag
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.traced_bus import TracedBus
from mcp_ledger.observability.tracing import span
from mcp_ledger.producers.kafka import KafkaBus
from mcp_ledger.producers.ports import Message
from tests.support.telemetry import recorded_spans

pytestmark = pytest.mark.integration

WAIT = 30.0


@pytest.fixture
async def traced_buses(services_env: dict[str, str]) -> AsyncIterator[Callable[[], TracedBus]]:
    made: list[KafkaBus] = []

    def make() -> TracedBus:
        made.append(KafkaBus.from_url(services_env["LEDGER_BUS"], client_id="mcp-ledger-tests"))
        return TracedBus(made[-1], LedgerMetrics(), system="kafka")

    yield make
    await asyncio.gather(*(bus.stop(drain_timeout=1.0) for bus in made))


async def test_the_consumer_span_continues_the_publishers_trace_through_kafka_headers(
    traced_buses: Callable[[], TracedBus], unique: str
) -> None:
    topic = f"{unique}.ledger.commands"
    bus, received = traced_buses(), asyncio.Queue[Message]()

    async def handle(message: Message) -> None:
        await received.put(message)

    bus.subscribe(topic, handle, group=f"{unique}-workers")
    with recorded_spans() as exporter:
        await bus.start()
        with span("api call") as root:
            await bus.publish(topic, "session-1", b"{}", {"command_id": "c1"})
        message = await asyncio.wait_for(received.get(), WAIT)
        spans = exporter.get_finished_spans()
    trace_id = root.get_span_context().trace_id
    (producer,) = [s for s in spans if s.name == f"send {topic}"]
    (consumer,) = [s for s in spans if s.name == f"process {topic}"]
    assert message.headers["command_id"] == "c1"
    assert message.headers["traceparent"].split("-")[1] == format(trace_id, "032x")
    assert producer.context is not None
    assert consumer.context is not None
    assert consumer.context.trace_id == trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id


async def test_consumer_lag_counts_what_the_group_has_not_committed(
    traced_buses: Callable[[], TracedBus], unique: str, services_env: dict[str, str]
) -> None:
    topic, group = f"{unique}.ledger.events", f"{unique}-projections"
    publisher = traced_buses()
    await publisher.start()
    for n in range(3):
        await publisher.publish(topic, f"stream-{n}", b"{}")
    lag = KafkaLag(services_env["LEDGER_BUS"].removeprefix("kafka://").split(","), [(topic, group)])
    try:
        assert await lag.measure() == {(topic, group): 3}
        consumer, handled = traced_buses(), asyncio.Queue[Message]()

        async def handle(message: Message) -> None:
            await handled.put(message)

        consumer.subscribe(topic, handle, group=group)
        await consumer.start()
        for _ in range(3):
            await asyncio.wait_for(handled.get(), WAIT)
        async with asyncio.timeout(WAIT):
            # Offsets are committed right after each handler returns.
            while (await lag.measure())[(topic, group)]:
                await asyncio.sleep(0.1)
    finally:
        await lag.close()
