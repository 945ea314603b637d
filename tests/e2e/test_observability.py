"""Traces, metrics, readiness, the AsyncAPI document and draining, on the embedded gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jsonschema
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from mcp_ledger.domain.commands import CallTool
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.observability.asyncapi import asyncapi_document
from tests.support.clients import mcp_client, open_session, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.telemetry import ancestry, recorded_spans
from tests.support.tokens import good_token

WAIT = 10.0


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running_gateway:
        yield running_gateway


def _base(gw: RunningGateway) -> str:
    return gw.url.removesuffix("/mcp")


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.02)


def _trace_of(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    (root,) = [s for s in spans if s.name == name and s.kind is SpanKind.SERVER]
    assert root.context is not None
    return [s for s in spans if s.context is not None and s.context.trace_id == root.context.trace_id]


async def test_one_tool_call_is_one_trace_from_the_api_through_the_worker_to_the_projection(
    embedded: RunningGateway,
) -> None:
    session_id = await open_session(embedded.url)
    with recorded_spans() as exporter:
        async with mcp_client(embedded.url, session=session_id) as client:
            structured(await client.call_tool("note_set", {"key": "city", "value": "Lyon"}))

        def projected() -> bool:
            names = {s.name for s in _trace_of(exporter.get_finished_spans(), "tools/call note_set")}
            return "project ledger.events" in names

        await _until(projected)
        spans = _trace_of(exporter.get_finished_spans(), "tools/call note_set")
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    names = {s.name for s in spans}
    assert {
        "tools/call note_set",
        "send ledger.commands",
        "process ledger.commands",
        "handle CallTool",
        "tool note_set",
        "eventstore append",
        "send ledger.events",
        "process ledger.events",
        "project ledger.events",
    } <= names
    projections = [s for s in spans if s.name == "project ledger.events"]
    # ToolCalled, SessionNoteWritten and ToolSucceeded: each projected under its own publish.
    assert len(projections) == 3
    for projection in projections:
        chain = ancestry(projection, by_id)
        # Up to the API's span; above it is the official client's own span (it sends traceparent too).
        assert chain[:6] == [
            "process ledger.events",
            "send ledger.events",
            "handle CallTool",
            "process ledger.commands",
            "send ledger.commands",
            "tools/call note_set",
        ]
    (tool,) = {s for s in spans if s.name == "tool note_set"}
    assert ancestry(tool, by_id)[:3] == ["handle CallTool", "process ledger.commands", "send ledger.commands"]
    (append,) = {s for s in spans if s.name == "eventstore append"}
    assert ancestry(append, by_id)[0] == "handle CallTool"


async def test_stored_events_remember_the_trace_they_were_recorded_in(embedded: RunningGateway) -> None:
    with recorded_spans() as exporter:
        async with mcp_client(embedded.url) as client:
            structured(await client.call_tool("echo", {"text": "traced"}))
        (server,) = [s for s in exporter.get_finished_spans() if s.name == "tools/call echo"]
    store = await open_event_store(embedded.runtime.settings.store_url)
    try:
        events = await store.read_all()
    finally:
        await store.close()
    assert server.context is not None
    trace_id = format(server.context.trace_id, "032x")
    echo = [e for e in events if e.data.get("tool_name") == "echo"]
    assert [e.event_type for e in echo] == ["ToolCalled", "ToolSucceeded"]
    assert [e.metadata["traceparent"].split("-")[1] for e in echo] == [trace_id, trace_id]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """Summed over the label values not given."""

    def total(samples: Samples) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)

    return total(after) - total(before)


async def test_metrics_count_outcomes_denials_appended_events_and_request_latency(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(update={"metrics_port": 0})
    async with gateway(settings) as secured:
        metrics_url = f"http://127.0.0.1:{secured.runtime.metrics_port}/metrics"
        async with httpx.AsyncClient() as http:
            before = _samples((await http.get(metrics_url)).text)
            async with mcp_client(secured.url, token=good_token(settings)) as client:
                structured(await client.call_tool("echo", {"text": "counted"}))
            async with mcp_client(secured.url, token=good_token(settings, roles=())) as client:
                assert (await client.call_tool("state_seal", {"state": {"x": 1}})).is_error
            response = await http.get(metrics_url)
    after = _samples(response.text)
    assert response.status_code == 200
    assert _value(before, "ledger_tool_calls_total", tool="echo", outcome="succeeded") == 0
    assert _value(after, "ledger_tool_calls_total", tool="echo", outcome="succeeded") == 1
    assert _value(after, "ledger_tool_calls_total", tool="state_seal", outcome="denied") == 1
    assert _value(after, "ledger_tool_call_denials_total", tool="state_seal") == 1
    assert _value(after, "ledger_events_appended_total", event_type="ToolCallDenied") == 1
    succeeded = _delta(before, after, "ledger_tool_calls_total", outcome="succeeded")
    assert succeeded == _delta(before, after, "ledger_events_appended_total", event_type="ToolSucceeded") > 1
    latency = "ledger_request_duration_seconds_count"
    assert _value(after, latency, method="tools/call", tool="echo") == 1
    calls = sum(_delta(before, after, "ledger_tool_calls_total", outcome=o) for o in ("succeeded", "denied"))
    assert _delta(before, after, "ledger_messages_published_total", topic="ledger.commands") == calls


async def test_readyz_reports_every_part_ready_and_healthz_stays_plain(embedded: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"{_base(embedded)}/readyz")
        live = await http.get(f"{_base(embedded)}/healthz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checked": ["bus", "event_store", "keys", "state"]}
    assert live.status_code == 200


async def test_readyz_is_503_naming_the_part_that_is_down(embedded: RunningGateway) -> None:
    await embedded.runtime.bus.stop()
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{_base(embedded)}/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == {"bus": "not running"}


async def test_a_call_in_flight_at_shutdown_still_gets_its_answer_and_its_recorded_outcome(
    tmp_path: Path,
) -> None:
    settings = embedded_settings(tmp_path)

    answers: list[dict[str, Any]] = []

    async def slow_call(url: str) -> None:
        try:
            # The stateless era: no session is opened at initialize, so the sleep is the only command.
            async with mcp_client(url, mode="2026-07-28") as client:
                await client.list_tools()  # the client checks results against these schemas
                answers.append(structured(await client.call_tool("sleep", {"ms": 800})))
        except* httpx2.ConnectError:
            pass  # the client's own teardown reaches for a server that has stopped by then

    async with gateway(settings) as gw:
        call = asyncio.create_task(slow_call(gw.url))
        in_flight = {"topic": settings.commands_topic}
        await _until(lambda: gw.runtime.metrics.value("ledger_messages_in_flight", in_flight) == 1)
        # Leaving the block shuts the gateway down while the sleep is running.
    await asyncio.wait_for(call, WAIT)
    store = await open_event_store(settings.store_url)
    try:
        outcomes = [e.event_type for e in await store.read_all() if e.data.get("tool_name") == "sleep"]
    finally:
        await store.close()
    assert answers == [{"slept_ms": 800}]
    assert outcomes == ["ToolCalled", "ToolSucceeded"]


async def test_the_asyncapi_document_is_served_and_describes_every_recorded_and_published_message(
    embedded: RunningGateway,
) -> None:
    settings = embedded.runtime.settings
    session_id = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session_id) as client:
        structured(await client.call_tool("note_set", {"key": "k", "value": {"deep": [1, 2]}}))
        structured(await client.call_tool("echo", {"text": "hi"}))
        assert (await client.call_tool("note_get", {"key": "k"})).structured_content is not None
    async with httpx.AsyncClient() as http:
        served = (await http.get(f"{_base(embedded)}/asyncapi.json")).json()
    assert served == asyncapi_document(settings)
    events = jsonschema.Draft202012Validator({**served, "$ref": "#/components/messages/StoredEvent/payload"})
    store = await open_event_store(settings.store_url)
    try:
        recorded = await store.read_all()
    finally:
        await store.close()
    assert {e.event_type for e in recorded} >= {
        "SessionOpened",
        "ToolCalled",
        "ToolSucceeded",
        "SessionNoteWritten",
    }
    for event in recorded:
        events.validate(event.to_json())
    assert embedded.runtime.sealer is not None
    sealed = await embedded.runtime.sealer.seal_command(
        CallTool(tenant="acme", subject="alice", tool_name="echo", arguments={"text": "secret"})
    )
    commands = jsonschema.Draft202012Validator(
        {**served, "$ref": "#/components/messages/CommandEnvelope/payload"}
    )
    wire = {"command": sealed}
    commands.validate(wire)
    assert "secret" not in str(wire)
    with pytest.raises(jsonschema.ValidationError):
        events.validate({**recorded[0].to_json(), "schema_version": 99})
