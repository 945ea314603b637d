"""`mcp-ledger bench observability`: what tracing costs a tool call, and what a scrape costs.

Runs the embedded gateway twice in its own process with the same client as `bench calls`:
tracing off (LEDGER_OTEL_EXPORTER=none, OpenTelemetry's no-op spans) and tracing on with the
console exporter writing every span of every call to the process log (the full cost: spans,
context in headers, batch export). Metrics are always on, so both runs include them. Then
times rendering /metrics for a registry filled to a stated number of series.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from mcp_ledger.bench.calls.paths import PathResult, Progress, bench_gateway
from mcp_ledger.observability.metrics import TERMINAL_OUTCOMES, LedgerMetrics

EMBEDDED = {"LEDGER_BUS": "memory://", "LEDGER_STORE": "", "LEDGER_STATE": "memory://"}


def _filled_metrics(tools: int, event_types: int) -> LedgerMetrics:
    metrics = LedgerMetrics()
    for tool in range(tools):
        name = f"tool_{tool}"
        for event_type in TERMINAL_OUTCOMES:
            metrics.recorded(event_type, {"tool_name": name})
        metrics.request_seconds.labels(method="tools/call", tool=name).observe(0.01)
    for number in range(event_types):
        metrics.events_appended.labels(event_type=f"Event{number}").inc()
    return metrics


def measure_scrape(tools: int, event_types: int, scrapes: int) -> dict[str, Any]:
    """Render the exposition of a registry with `tools` tools' series, `scrapes` times."""
    metrics = _filled_metrics(tools, event_types)
    body = generate_latest(metrics.registry)
    timings = []
    for _ in range(scrapes):
        started = time.perf_counter()
        generate_latest(metrics.registry)
        timings.append((time.perf_counter() - started) * 1000)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return {
        "tools": tools,
        "series": series,
        "bytes": len(body),
        "p50_ms": round(statistics.median(timings), 3),
        "max_ms": round(max(timings), 3),
    }


async def run_observability_bench(calls: int, concurrency: int, progress: Progress) -> dict[str, Any]:
    """Both runs and the scrape timing; returns the JSON-ready report."""
    results: list[PathResult] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-obs-") as tmp:
        work = Path(tmp)
        for target, exporter in (("traces-off", "none"), ("traces-console", "console")):
            progress(f"embedded gateway, LEDGER_OTEL_EXPORTER={exporter}")
            env = {**EMBEDDED, "LEDGER_OTEL_EXPORTER": exporter, "LEDGER_LOG_FORMAT": "json"}
            results.append(await bench_gateway(target, calls, concurrency, work, env))
    off, on = results
    progress("rendering /metrics")
    return {
        "benchmark": "observability",
        "tool": "echo",
        "results": [asdict(r) for r in results],
        "tracing_overhead": {
            "p50_ms": round(on.p50_ms - off.p50_ms, 3),
            "p99_ms": round(on.p99_ms - off.p99_ms, 3),
            "throughput_ratio": round(on.calls_per_s / off.calls_per_s, 3),
        },
        "scrape": [measure_scrape(tools, 60, 50) for tools in (10, 100, 1000)],
    }
