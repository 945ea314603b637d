"""LEDGER_OTEL_EXPORTER picks the exporter; trace context crosses message headers."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from mcp_ledger.observability.tracing import (
    TracingConfigError,
    context_from,
    exporter_for,
    span,
    with_trace_context,
)
from tests.support.telemetry import recorded_spans


def test_none_and_empty_mean_no_exporter() -> None:
    assert exporter_for("none") is None
    assert exporter_for("") is None


def test_console_and_an_otlp_url_pick_their_exporters() -> None:
    assert isinstance(exporter_for("console"), ConsoleSpanExporter)
    otlp = exporter_for("http://collector:4318")
    assert isinstance(otlp, OTLPSpanExporter)
    assert otlp._endpoint == "http://collector:4318/v1/traces"


def test_an_unknown_exporter_is_refused_with_the_accepted_values() -> None:
    with pytest.raises(TracingConfigError, match="none, console or an OTLP/HTTP URL"):
        exporter_for("jaeger")


def test_headers_written_in_a_span_name_it_as_the_remote_parent() -> None:
    with recorded_spans(), span("publisher") as current:
        headers = with_trace_context({"command_id": "c1"})
    parent = context_from(headers)
    assert headers["command_id"] == "c1"
    assert headers["traceparent"].split("-")[1] == format(current.get_span_context().trace_id, "032x")
    assert parent is not None


def test_headers_without_a_valid_traceparent_name_no_parent() -> None:
    assert context_from({}) is None
    assert context_from({"traceparent": "garbage"}) is None
