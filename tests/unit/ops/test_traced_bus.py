"""The tracing bus decorator on the in-process bus: trace context in headers, consumer spans
under producer spans, handling timed and counted, the outbox sweep continuing a stored trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry.trace import StatusCode

from mcp_ledger.eventstore.ports import NewEvent
from mcp_ledger.eventstore.sql import SqlEventStore
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.traced_bus import TracedBus
from mcp_ledger.observability.traced_store import InstrumentedEventStore
from mcp_ledger.observability.tracing import span
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import Message, Outgoing
from tests.support.telemetry import recorded_spans


class Inbox:
    def __init__(self, failures: int = 0) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.failures = failures

    async def __call__(self, message: Message) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler failed once")
        self.messages.put_nowait(message)

    async def take(self) -> Message:
        return await asyncio.wait_for(self.messages.get(), 5)


@pytest.fixture
async def traced() -> AsyncIterator[tuple[TracedBus, Inbox, LedgerMetrics]]:
    metrics, inbox = LedgerMetrics(), Inbox(failures=1)
    bus = TracedBus(InProcessBus(), metrics, system="in-process")
    bus.subscribe("things", inbox, group="readers")
    await bus.start()
    yield bus, inbox, metrics
    await bus.stop()


async def test_the_handler_runs_in_a_consumer_span_under_the_publishers_span(
    traced: tuple[TracedBus, Inbox, LedgerMetrics],
) -> None:
    bus, inbox, metrics = traced
    with recorded_spans() as exporter:
        with span("caller") as caller:
            await bus.publish("things", "k", b"1", {"command_id": "c1"})
        message = await inbox.take()
        spans = exporter.get_finished_spans()
    (producer,) = [s for s in spans if s.name == "send things"]
    failed, succeeded = [s for s in spans if s.name == "process things"]
    assert message.headers["command_id"] == "c1"
    assert producer.context is not None
    assert message.headers["traceparent"].split("-")[2] == format(producer.context.span_id, "016x")
    assert producer.parent is not None
    assert producer.parent.span_id == caller.get_span_context().span_id
    # The first delivery failed and was redelivered: both attempts are children of the send.
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.parent is not None
    assert succeeded.parent is not None
    assert {failed.parent.span_id, succeeded.parent.span_id} == {producer.context.span_id}
    assert (
        metrics.value(
            "ledger_message_handling_duration_seconds_count", {"topic": "things", "outcome": "error"}
        )
        == 1
    )
    assert (
        metrics.value("ledger_message_handling_duration_seconds_count", {"topic": "things", "outcome": "ok"})
        == 1
    )
    assert metrics.value("ledger_messages_in_flight", {"topic": "things"}) == 0
    assert metrics.value("ledger_messages_published_total", {"topic": "things"}) == 1


async def test_the_outbox_sweep_publishes_a_stored_event_into_the_trace_it_was_recorded_in(
    store: SqlEventStore,
) -> None:
    metrics, inbox = LedgerMetrics(), Inbox()
    bus = TracedBus(InProcessBus(), metrics, system="in-process")
    bus.subscribe("events", inbox, group="readers")
    await bus.start()
    try:
        with recorded_spans() as exporter:
            with span("worker") as worker:
                # Appended in the worker's trace; the fast-path publish never happened (a crash).
                await InstrumentedEventStore(store, metrics).append("s", 0, [NewEvent("Thing", {"n": 1})])
            await OutboxRelay(store, bus, "events", grace=0).sweep_once()
            message = await inbox.take()
            (consumer,) = [s for s in exporter.get_finished_spans() if s.name == "process events"]
    finally:
        await bus.stop()
    trace_id = worker.get_span_context().trace_id
    assert message.headers["traceparent"].split("-")[1] == format(trace_id, "032x")
    assert consumer.context is not None
    assert consumer.context.trace_id == trace_id
    assert metrics.value("ledger_events_appended_total", {"event_type": "Thing"}) == 1


async def test_readiness_sees_the_bus_running_only_between_start_and_stop() -> None:
    bus = TracedBus(InProcessBus(), LedgerMetrics(), system="in-process")
    assert not bus.running
    await bus.start()
    assert bus.running
    await bus.stop()
    assert not bus.running


async def test_each_message_of_a_batch_carries_its_own_producer_span_and_is_counted(
    traced: tuple[TracedBus, Inbox, LedgerMetrics],
) -> None:
    bus, inbox, metrics = traced
    inbox.failures = 0
    with recorded_spans() as exporter:
        await bus.publish_many("things", [Outgoing("k", b"1"), Outgoing("k", b"2", {"command_id": "c2"})])
        first, second = await inbox.take(), await inbox.take()
        spans = exporter.get_finished_spans()
    producers = [s for s in spans if s.name == "send things"]
    assert [m.value for m in (first, second)] == [b"1", b"2"]
    assert second.headers["command_id"] == "c2"
    sent_from = {m.headers["traceparent"].split("-")[2] for m in (first, second)}
    assert sent_from == {format(s.context.span_id, "016x") for s in producers if s.context is not None}
    assert len(sent_from) == 2
    assert metrics.value("ledger_messages_published_total", {"topic": "things"}) == 2
