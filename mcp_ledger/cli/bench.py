"""The benchmarks of the call path: `mcp-ledger bench calls` and `bench state`.

Printed as a table and written as JSON; the ratios are against a baseline measured in the
same run.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mcp_ledger.bench.calls.history import run_history_bench
from mcp_ledger.bench.calls.paths import run_calls_bench
from mcp_ledger.bench.calls.scaleout import run_scale_bench
from mcp_ledger.bench.state import run_state_bench
from mcp_ledger.bench.targets import distributed_env
from mcp_ledger.bench.upstream.calls import run_upstream_bench
from mcp_ledger.cli.options import StateOpt, console, load_settings
from mcp_ledger.wiring.bootstrap import make_views


def _cpu(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu_parts(parts: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.2f}" for name, value in parts.items()) or "-"


def _print_calls_report(report: dict[str, Any]) -> None:
    table = Table(title="tool-call latency and throughput (echo)")
    for column in (
        "target",
        "calls",
        "p50 ms",
        "p99 ms",
        "calls/s",
        "stored",
        "own CPU ms/call",
    ):
        table.add_column(column, justify="right")
    for row in report["results"]:
        stored = "-" if row["stored_outcomes"] is None else str(row["stored_outcomes"])
        table.add_row(
            row["target"],
            str(row["calls"]),
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            f"{row['calls_per_s']:.0f}",
            stored,
            _cpu(row["own_cpu_ms_per_call"]),
        )
    Console().print(table)
    for row in report["results"]:
        Console().print(f"CPU ms per call, {row['target']}: {_cpu_parts(row['cpu_ms_per_call'])}")
    for target, ratios in report["ratios_vs_plain_sdk"].items():
        Console().print(f"{target} vs plain SDK: {ratios}")
    for target, ratios in report.get("ratios_vs_upstream_direct", {}).items():
        Console().print(f"{target} vs the upstream called directly: {ratios}")


def bench_calls(
    calls: Annotated[int, typer.Option(min=20, max=100_000, help="calls per measurement")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="concurrent clients for calls/s")] = 8,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-calls.json"),
    upstream: Annotated[
        bool, typer.Option("--upstream", help="also: an SDK server called directly vs as an upstream")
    ] = False,
) -> None:
    """Tool-call p50/p99 and calls/s: plain SDK server, embedded gateway, and (when LEDGER_BUS,
    LEDGER_STORE and LEDGER_STATE name Kafka, PostgreSQL and Redis) the distributed gateway."""
    distributed = distributed_env(load_settings())
    if distributed is None:
        console.print("LEDGER_BUS/STORE/STATE do not name Kafka/PostgreSQL/Redis: distributed path skipped")
    report = asyncio.run(
        run_calls_bench(calls, concurrency, distributed, lambda text: console.print(f"… {text}"))
    )
    if upstream:
        extra = asyncio.run(
            run_upstream_bench(calls, concurrency, distributed, lambda text: console.print(f"… {text}"))
        )
        report["results"] += extra["results"]
        report["ratios_vs_upstream_direct"] = extra["ratios_vs_upstream_direct"]
    output.write_text(json.dumps(report, indent=2) + "\n")
    _print_calls_report(report)
    console.print(f"written to {output}")


def bench_scale(
    calls: Annotated[int, typer.Option(min=20, max=100_000, help="calls per measurement")] = 300,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="concurrent clients for calls/s")] = 8,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-scale.json"),
) -> None:
    """Distributed calls/s and CPU per call with 1 and 2 workers and 1 and 2 API replicas
    (needs LEDGER_BUS, LEDGER_STORE and LEDGER_STATE naming Kafka, PostgreSQL and Redis)."""
    distributed = distributed_env(load_settings())
    if distributed is None:
        raise typer.BadParameter("LEDGER_BUS/STORE/STATE must name Kafka, PostgreSQL and Redis")
    report = asyncio.run(
        run_scale_bench(calls, concurrency, distributed, lambda text: console.print(f"… {text}"))
    )
    output.write_text(json.dumps(report, indent=2) + "\n")
    plain = report["baseline"]["calls_per_s"]
    table = Table(title=f"scale-out (echo, {concurrency} clients; plain SDK {plain:.0f} calls/s)")
    for column in (
        "workers",
        "API replicas",
        "calls/s",
        "x plain",
        "own CPU ms/call",
        "calls/s per core",
        "CPU ms/call",
    ):
        table.add_column(column, justify="right")
    for row in report["results"]:
        table.add_row(
            str(row["workers"]),
            str(row["api_replicas"]),
            f"{row['calls_per_s']:.0f}",
            f"{row['throughput_ratio']:.2f}",
            _cpu(row["own_cpu_ms_per_call"]),
            _cpu(row["calls_per_core_s"]),
            _cpu_parts(row["cpu_ms_per_call"]),
        )
    Console().print(table)
    console.print(f"written to {output}")


def _listing_table(plain: dict[str, Any], tools: int) -> Table:
    columns = (
        "target",
        "tools listed",
        "SDK client p50 ms",
        "x plain",
        "bare POST p50 ms",
        "p99 ms",
        "x plain",
    )
    table = Table(
        *columns, title=f"tools/list with {tools} registered (plain: an SDK server listing as many)"
    )
    _listing_row(table, "plain SDK server", {**plain, "with_registered": plain["sdk_client"]}, plain)
    return table


def _listing_row(table: Table, target: str, listed: dict[str, Any], plain: dict[str, Any]) -> None:
    sdk, raw = listed["with_registered"]["p50_ms"], listed["raw_http"]["p50_ms"]
    table.add_row(
        target,
        str(listed["listed"]),
        f"{sdk:.2f}",
        f"{sdk / plain['sdk_client']['p50_ms']:.2f}",
        f"{raw:.2f}",
        f"{listed['raw_http']['p99_ms']:.2f}",
        f"{raw / plain['raw_http']['p50_ms']:.2f}",
    )


def bench_history(
    earlier: Annotated[int, typer.Option(min=10, max=100_000, help="calls before the measured ones")] = 1000,
    tools: Annotated[int, typer.Option(min=10, max=10_000, help="registered tools for tools/list")] = 1000,
    events: Annotated[
        int, typer.Option(min=1000, max=10_000_000, help="events in the full store")
    ] = 1_000_000,
    samples: Annotated[int, typer.Option(min=10, max=10_000, help="measured calls, lists, appends")] = 100,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-history.json"),
) -> None:
    """Cost with history: a call in a session with EARLIER calls vs a new session, tools/list
    with TOOLS registered tools, an append with EVENTS stored vs an empty store (embedded;
    distributed and PostgreSQL too when LEDGER_BUS/STORE/STATE name the services)."""
    distributed = distributed_env(load_settings())
    report = asyncio.run(
        run_history_bench(
            earlier, tools, events, samples, distributed, lambda text: console.print(f"… {text}")
        )
    )
    output.write_text(json.dumps(report, indent=2) + "\n")
    table = Table(
        "target", "new session p50", f"after {earlier} calls p50", "ratio", title="call cost with history"
    )
    listing = _listing_table(report["plain_listing"], tools)
    for row in report["calls"]:
        history, tools_list = row["session_history"], row["tools_list"]
        table.add_row(
            row["target"],
            f"{history['new_session']['p50_ms']:.2f}",
            f"{history['long_session']['p50_ms']:.2f}",
            f"{history['p50_ratio']:.2f}",
        )
        _listing_row(listing, row["target"], tools_list, report["plain_listing"])
    appends = Table(
        "store", "empty p50 ms", f"{events:,} events p50 ms", "ratio", title="append cost with a full store"
    )
    for row in report["stores"]:
        appends.add_row(
            row["store"],
            f"{row['empty_store']['p50_ms']:.3f}",
            f"{row['with_stored_events']['p50_ms']:.3f}",
            f"{row['p50_ratio']:.2f}",
        )
    for printed in (table, listing, appends):
        Console().print(printed)
    console.print(f"written to {output}")


def bench_state(
    operations: Annotated[int, typer.Option(min=100, max=1_000_000, help="puts and gets each")] = 5000,
    state: StateOpt = None,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-state.json"),
) -> None:
    """Session state get/put p50/p99 through the configured state store (Redis: LEDGER_STATE)."""
    settings = load_settings(state=state)
    if settings.state.startswith("memory"):
        console.print("LEDGER_STATE is memory://: measuring the in-memory store, not Redis")

    async def measure() -> dict[str, Any]:
        # Its own key prefix, removed afterwards: the bench never touches live sessions.
        scratch = settings.model_copy(update={"state_prefix": f"{settings.state_prefix}bench-{os.getpid()}:"})
        views = make_views(scratch)
        try:
            return await run_state_bench(views, operations)
        finally:
            await views.clear()
            await views.close()

    report = {"state": settings.state, **asyncio.run(measure())}
    output.write_text(json.dumps(report, indent=2) + "\n")
    table = Table(
        "operation", "count", "p50 ms", "p99 ms", "max ms", title=f"session state via {settings.state}"
    )
    for row in report["results"]:
        table.add_row(
            row["operation"],
            str(row["count"]),
            f"{row['p50_ms']:.3f}",
            f"{row['p99_ms']:.3f}",
            f"{row['max_ms']:.3f}",
        )
    Console().print(table)
    console.print(f"written to {output}")


def register(bench_app: typer.Typer) -> None:
    """Add the call-path benchmarks to the CLI."""
    bench_app.command("calls")(bench_calls)
    bench_app.command("state")(bench_state)
    bench_app.command("scale")(bench_scale)
    bench_app.command("history")(bench_history)
