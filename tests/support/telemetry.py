"""Spans recorded in memory for the test that asks, through the process's one tracer provider.

OpenTelemetry allows one global provider per process; it is installed on first use with a
gate in front of the in-memory exporter, so spans of tests that do not record are dropped.
Its span and trace ids come from a random source of its own: the SDK's default draws from the
global `random`, and a gateway thread making spans while hypothesis draws an example (in a
later test of the same process) looks to hypothesis like a strategy using `random`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator


class _Gate(SpanProcessor):
    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.open = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            self.inner.on_end(span)


_EXPORTER = InMemorySpanExporter()
_GATE = _Gate(SimpleSpanProcessor(_EXPORTER))


class _OwnRandomIds(IdGenerator):
    def __init__(self) -> None:
        self._random = random.Random()

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


def _install() -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(id_generator=_OwnRandomIds())
    provider.add_span_processor(_GATE)
    trace.set_tracer_provider(provider)


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Record the spans that end inside the block."""
    _install()
    _EXPORTER.clear()
    _GATE.open = True
    try:
        yield _EXPORTER
    finally:
        _GATE.open = False
        _EXPORTER.clear()


def ancestry(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of the span's ancestors, nearest first (as far as they were recorded)."""
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        ancestor = by_id[parent.span_id]
        names.append(ancestor.name)
        parent = ancestor.parent
    return names
