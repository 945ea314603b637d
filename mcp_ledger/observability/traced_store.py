"""Event store and tool runner decorators: spans for loading, running and appending.

`InstrumentedEventStore` wraps any EventStore: reads and appends get spans, every appended
event is counted (and its terminal outcome, for tool-call and denial metrics), and each new
event's metadata records the `traceparent` of the work that appended it, so the outbox sweep
can publish it into the same trace after a crash. `traced_runners` gives each tool run a
span. Neither changes results or errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from opentelemetry import trace

from mcp_ledger.eventstore.ports import AppendResult, CommandKey, EventStore, NewEvent, StoredEvent
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.tracing import span, with_trace_context


def _with_trace(events: Sequence[NewEvent]) -> list[NewEvent]:
    if not trace.get_current_span().get_span_context().is_valid:
        return list(events)
    carrier = with_trace_context({})
    return [
        NewEvent(
            e.event_type, e.data, e.schema_version, {**e.metadata, "traceparent": carrier["traceparent"]}
        )
        for e in events
    ]


class InstrumentedEventStore:
    """An EventStore that traces reads and appends and counts what it appended."""

    def __init__(self, inner: EventStore, metrics: LedgerMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        command: CommandKey | None = None,
    ) -> AppendResult:
        records = _with_trace(events)
        attributes = {"ledger.events": len(records), "ledger.expected_version": expected_version}
        with span("eventstore append", attributes=attributes) as current:
            result = await self.inner.append(stream_id, expected_version, records, command=command)
            current.set_attribute("ledger.duplicate", result.duplicate)
        if not result.duplicate:
            for event in result.events:
                self._metrics.recorded(event.event_type, event.data)
        return result

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
        with span("eventstore read_stream"):
            return await self.inner.read_stream(stream_id, after_version)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[StoredEvent]:
        return await self.inner.read_all(after_position, limit)

    async def events_for_command(self, command: CommandKey) -> list[StoredEvent]:
        with span("eventstore events_for_command"):
            return await self.inner.events_for_command(command)

    async def pending_outbox(self, limit: int = 500) -> list[StoredEvent]:
        return await self.inner.pending_outbox(limit)

    async def mark_published(self, positions: Sequence[int]) -> None:
        await self.inner.mark_published(positions)

    async def last_position(self) -> int:
        return await self.inner.last_position()

    async def close(self) -> None:
        await self.inner.close()


Invocation = TypeVar("Invocation")
Outcome = TypeVar("Outcome")
# Any runner signature (the workers' is consumers.tools.ToolRunner): observability knows no consumer.
Runner = Callable[[Invocation], Awaitable[Outcome]]


def traced_runners(
    runners: Mapping[str, Runner[Invocation, Outcome]],
) -> dict[str, Runner[Invocation, Outcome]]:
    """The same runners, each run inside a `tool NAME` span."""
    return {name: _traced(name, runner) for name, runner in runners.items()}


def _traced(name: str, runner: Runner[Invocation, Outcome]) -> Runner[Invocation, Outcome]:
    async def run(invocation: Invocation) -> Outcome:
        with span(f"tool {name}", attributes={"gen_ai.tool.name": name}):
            return await runner(invocation)

    return run
