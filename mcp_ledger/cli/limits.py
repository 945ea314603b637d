"""CLI commands of rate limiting: `mcp-ledger rate refusals` and `mcp-ledger bench rate`.

Reads refusal counts from the shared limiter (Redis, LEDGER_STATE); an embedded server keeps
its counts in its own process, so there is nothing to read from outside it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mcp_ledger.bench.rate import run_rate_bench
from mcp_ledger.limits.memory import MemoryRateLimiter
from mcp_ledger.limits.ports import LimiterUnavailableError, RateLimiter
from mcp_ledger.limits.redis import RedisRateLimiter
from mcp_ledger.settings import Settings

console = Console(stderr=True)


def _limiter(settings: Settings) -> RateLimiter:
    if settings.state.startswith("memory"):
        return MemoryRateLimiter()
    return RedisRateLimiter.from_url(settings.state, settings.state_prefix)


async def _refusals(settings: Settings, tenant: str, hours: int) -> list[dict[str, Any]]:
    limiter = _limiter(settings)
    try:
        return [
            {"hour": c.hour, "subject": c.subject, "scope": c.scope, "refused": c.refused}
            for c in await limiter.refusals(tenant, hours)
        ]
    finally:
        await limiter.close()


async def _bench(settings: Settings, checks: int, concurrent: int) -> dict[str, Any]:
    report: dict[str, Any] = {"backends": []}
    for name, limiter in (("memory", MemoryRateLimiter()), ("state", _limiter(settings))):
        if name == "state" and settings.state.startswith("memory"):
            continue
        try:
            result = await run_rate_bench(limiter, checks, concurrent)
        finally:
            await limiter.close()
        report["backends"].append({"backend": name if name == "memory" else "redis", **result})
    return report


def _print_bench(report: dict[str, Any]) -> None:
    table = Table(title="rate-limit checks")
    for column in ("backend", "checks", "p50 ms", "p99 ms", "burst", "admitted of", "exact", "checks/s"):
        table.add_column(column, justify="right")
    for row in report["backends"]:
        latency, load = row["latency"], row["concurrency"]
        table.add_row(
            row["backend"],
            str(latency["count"]),
            f"{latency['p50_ms']:.3f}",
            f"{latency['p99_ms']:.3f}",
            str(load["limit"]),
            f"{load['admitted']}/{load['checks']}",
            str(load["exact"]),
            f"{load['checks_per_s']:.0f}",
        )
    Console().print(table)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add `rate refusals` and `bench rate`."""
    rate_app = typer.Typer(
        help="Rate limits (LEDGER_RATE_TENANT, LEDGER_RATE_SUBJECT).", no_args_is_help=True
    )
    app.add_typer(rate_app, name="rate")

    @rate_app.command("refusals")
    def refusals(
        tenant: Annotated[str, typer.Option(help="tenant whose refused calls to list")],
        hours: Annotated[int, typer.Option(min=1, max=24 * 31, help="how many recent hours")] = 24,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    ) -> None:
        """Calls refused by rate limits, per hour (UTC), subject and scope."""
        settings = Settings()
        if settings.state.startswith("memory"):
            console.print("refusal counts are shared through Redis: set LEDGER_STATE=redis://…")
            raise typer.Exit(code=2)
        try:
            rows = asyncio.run(_refusals(settings, tenant, hours))
        except LimiterUnavailableError as error:
            console.print(f"[red]error:[/red] cannot read refusal counts: {error}")
            raise typer.Exit(code=2) from None
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table(title=f"refused calls of tenant {tenant}, last {hours} h")
        for column in ("hour (UTC)", "subject", "scope", "refused"):
            table.add_column(column)
        for row in rows:
            table.add_row(row["hour"], row["subject"], row["scope"], str(row["refused"]))
        Console().print(table)

    @bench_app.command("rate")
    def bench_rate(
        checks: Annotated[int, typer.Option(min=10, help="sequential checks for latency")] = 5000,
        concurrent: Annotated[int, typer.Option(min=4, help="checks at once against one bucket")] = 1000,
        out: Annotated[Path, typer.Option(help="JSON report")] = Path("bench-rate.json"),
    ) -> None:
        """Rate-limit check latency and exactness, in memory and (LEDGER_STATE) Redis."""
        report = asyncio.run(_bench(Settings(), checks, concurrent))
        _print_bench(report)
        out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {out}")
