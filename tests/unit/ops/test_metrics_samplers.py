"""Sampled gauges (outbox backlog, positions, projection lag) and a process's /metrics port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from mcp_ledger.consumers.mapping import command_key, to_new_events
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import ToolCalled
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.metrics_http import serve_metrics
from mcp_ledger.observability.samplers import Sampler, store_samples
from mcp_ledger.observability.traced_store import InstrumentedEventStore


async def _append(store: InstrumentedEventStore | SqlEventStore, count: int) -> None:
    for _ in range(count):
        command = CallTool(tenant="acme", subject="alice", tool_name="echo")
        event = ToolCalled(command_id=command.command_id, tool_name="echo", arguments={})
        await store.append(
            command.stream_id, 0, to_new_events(command, [event]), command=command_key(command)
        )


async def test_backlog_positions_and_projection_lag_follow_the_store(
    store: SqlEventStore, tmp_path: Path
) -> None:
    metrics = LedgerMetrics()
    instrumented = InstrumentedEventStore(store, metrics)
    engine = create_store_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")  # the fixture's store
    try:
        sampler = Sampler(store_samples(instrumented, engine, metrics))
        await _append(instrumented, 3)
        metrics.note_projected(b'{"position": 1}')
        await sampler.sample_once()
        assert metrics.value("ledger_outbox_backlog") == 3
        assert metrics.value("ledger_store_position") == 3
        assert metrics.value("ledger_projection_lag_events") == 2
        await store.mark_published([1, 2, 3])
        metrics.note_projected(b'{"position": 3}')
        metrics.note_projected(b'{"position": 2}')  # out of order: the highest stays
        await sampler.sample_once()
    finally:
        await engine.dispose()
    assert metrics.value("ledger_outbox_backlog") == 0
    assert metrics.value("ledger_projection_lag_events") == 0
    assert metrics.value("ledger_events_appended_total", {"event_type": "ToolCalled"}) == 3


async def test_a_failing_sample_keeps_its_last_value_and_the_others_still_run() -> None:
    metrics = LedgerMetrics()
    metrics.outbox_backlog.set(5)

    async def broken() -> None:
        raise ConnectionError("database down")

    async def fine() -> None:
        metrics.store_position.set(9)

    await Sampler([broken, fine]).sample_once()
    assert metrics.value("ledger_outbox_backlog") == 5
    assert metrics.value("ledger_store_position") == 9


async def test_a_worker_serves_its_metrics_on_its_own_port() -> None:
    metrics = LedgerMetrics()
    metrics.recorded("ToolCallDenied", {"tool_name": "state_seal"})
    listener = serve_metrics(metrics.registry, 0, "127.0.0.1", token="")
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{listener.port}/metrics")
    finally:
        await asyncio.to_thread(listener.close)
    assert response.status_code == 200
    assert 'ledger_tool_call_denials_total{tool="state_seal"} 1.0' in response.text
    assert 'ledger_tool_calls_total{outcome="denied",tool="state_seal"} 1.0' in response.text
