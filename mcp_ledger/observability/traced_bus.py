"""The bus decorator that carries traces and correlation ids across every message.

Wraps any MessageBus (Kafka, in-process): publishing opens a producer span and writes its
W3C `traceparent` into the message headers; every subscription's handler runs in a consumer
span whose parent is the one the headers name, with the message's command and correlation
ids bound for logging, timed and counted for metrics. Handlers and adapters know nothing of
it. Does not change delivery: errors propagate to the adapter exactly as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.trace import SpanKind

from mcp_ledger.observability.logs import log_context
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.tracing import context_from, span, with_trace_context
from mcp_ledger.producers.ports import Handler, Message, MessageBus, Outgoing


class TracedBus:
    """A MessageBus that traces, logs and counts what passes through the one it wraps."""

    def __init__(self, inner: MessageBus, metrics: LedgerMetrics, *, system: str) -> None:
        self.inner = inner
        self._metrics = metrics
        self._system = system
        self.running = False
        """True between a successful start() and stop(): readiness reads it."""

    async def start(self) -> None:
        await self.inner.start()
        self.running = True

    async def stop(self) -> None:
        self.running = False
        await self.inner.stop()

    def subscribe(
        self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1, in_flight: int = 1
    ) -> None:
        self.inner.subscribe(
            topic,
            self._traced(topic, handler, group),
            group=group,
            concurrency=concurrency,
            in_flight=in_flight,
        )

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        given = dict(headers or {})
        with self._producer_span(topic, key, given):
            await self.inner.publish(topic, key, value, with_trace_context(given))
        self._metrics.messages_published.labels(topic=topic).inc()

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        # Each message gets its own producer span, whose context its headers carry; the spans
        # cover handing the message over, and the batch is then acknowledged as a whole.
        traced = []
        for message in messages:
            given = dict(message.headers)
            with self._producer_span(topic, message.key, given):
                traced.append(Outgoing(message.key, message.value, with_trace_context(given)))
        await self.inner.publish_many(topic, traced)
        self._metrics.messages_published.labels(topic=topic).inc(len(traced))

    def _producer_span(self, topic: str, key: str, headers: Mapping[str, str]) -> AbstractContextManager[Any]:
        attributes = {
            "messaging.system": self._system,
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": key,
        }
        # A stored event re-published by the outbox sweep carries the trace it was recorded in.
        return span(
            f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes, context=context_from(headers)
        )

    def _traced(self, topic: str, handler: Handler, group: str | None) -> Handler:
        attributes = {
            "messaging.system": self._system,
            "messaging.operation.type": "process",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group or "(broadcast)",
        }

        async def on_message(message: Message) -> None:
            headers = message.headers
            with (
                log_context(
                    command_id=headers.get("command_id"), correlation_id=headers.get("correlation_id")
                ),
                self._metrics.handling(topic),
                span(
                    f"process {topic}",
                    kind=SpanKind.CONSUMER,
                    attributes={**attributes, "ledger.event_type": headers.get("event_type", "")},
                    context=context_from(headers),
                ),
            ):
                await handler(message)

        return on_message
