"""OpenTelemetry traces: the process's tracer provider and W3C trace context on messages.

Owns picking the exporter (LEDGER_OTEL_EXPORTER: `none`, `console`, or an OTLP/HTTP endpoint
URL), the `mcp-ledger` tracer, and injecting / extracting `traceparent` in message headers.
Does not decide what gets a span: the bus, store and runner decorators and the command
handler do. Without a configured provider every span is OpenTelemetry's no-op span.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind

TRACER_NAME = "mcp-ledger"
TRACE_HEADERS = ("traceparent", "tracestate")


class TracingConfigError(ValueError):
    """LEDGER_OTEL_EXPORTER names no exporter this build has."""


def exporter_for(spec: str) -> SpanExporter | None:
    """The span exporter LEDGER_OTEL_EXPORTER names; None for `none` (or empty).

    Raises:
        TracingConfigError: the value is neither none, console nor an http(s) URL.
    """
    value = spec.strip()
    if value in ("", "none"):
        return None
    if value == "console":
        return ConsoleSpanExporter()
    if value.startswith(("http://", "https://")):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # An endpoint given without a path means the collector's standard traces path.
        endpoint = value if value.rstrip("/").endswith("/v1/traces") else f"{value.rstrip('/')}/v1/traces"
        return OTLPSpanExporter(endpoint=endpoint)
    raise TracingConfigError(
        "LEDGER_OTEL_EXPORTER must be none, console or an OTLP/HTTP URL (http://collector:4318), "
        f"not {spec!r}"
    )


def configure_tracing(spec: str, service_name: str) -> TracerProvider | None:
    """Install the global tracer provider for this process (once, at the edge).

    Raises:
        TracingConfigError: see exporter_for.
    """
    exporter = exporter_for(spec)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    """The project's tracer (resolved through the global provider on every call)."""
    return trace.get_tracer(TRACER_NAME)


def with_trace_context(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The headers plus the current span's `traceparent` (and `tracestate`)."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str]) -> Context | None:
    """The remote parent a message's headers carry; None when they carry no valid one."""
    if "traceparent" not in headers:
        return None
    context = propagate.extract(dict(headers))
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
) -> Iterator[Span]:
    """A current span; an exception escaping it is recorded and marks it as an error."""
    with tracer().start_as_current_span(
        name, kind=kind, attributes=dict(attributes or {}), context=context
    ) as current:
        yield current
