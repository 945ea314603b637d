"""CLI commands of the planner's benchmarks: `mcp-ledger bench plans` and `bench steps`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mcp_ledger.bench.plans import run_plans_bench
from mcp_ledger.bench.steps import run_steps_bench
from mcp_ledger.cli.options import load_settings

console = Console(stderr=True)


def _print(report: dict[str, Any]) -> None:
    table = Table(title=f"plan executor on {report['store']}, seed {report['seed']}")
    columns = (
        "shape",
        "tasks",
        "latency ms",
        "critical path ms",
        "makespan ms",
        "x critical",
        "x faster than seq",
        "overhead/task ms",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in report["shapes"]:
        table.add_row(
            row["shape"],
            str(row["tasks"]),
            f"{row['latency_ms']:g}",
            f"{row['critical_path_ms']:.0f}",
            f"{row['makespan_ms']:.0f}",
            f"{row['vs_critical_path']:.3f}",
            f"{row['speedup_vs_sequential']:.1f}",
            f"{row['overhead_per_task_ms']:.3f}",
        )
    Console().print(table)
    for fault in report["faults"]:
        Console().print(
            f"faults {fault['fault_rate']:.0%} per attempt, max_attempts {fault['max_attempts']}: "
            f"{fault['succeeded_plans']}/{fault['plans']} plans of {fault['tasks_per_plan']} tasks succeeded "
            f"({fault['success_rate']:.0%}), {fault['attempts']} attempts, {fault['retries']} retries"
        )


def register(bench_app: typer.Typer) -> None:
    """Add `bench plans` to the bench command group."""

    @bench_app.command("plans")
    def bench_plans(
        sizes: Annotated[str, typer.Option(help="comma-separated plan sizes")] = "100,1000",
        latency_ms: Annotated[float, typer.Option(help="fake tool latency for plans up to 100 tasks")] = 20.0,
        big_latency_ms: Annotated[float, typer.Option(help="fake tool latency for larger plans")] = 5.0,
        seed: Annotated[int, typer.Option(help="seed of the random graphs and faults")] = 7,
        output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path(
            "bench-plans.json"
        ),
        store: Annotated[
            str | None, typer.Option(help="event store URL (default: a fresh SQLite file)")
        ] = None,
    ) -> None:
        """Makespan vs critical path and sequential, overhead per task, success with faults."""
        chosen = [int(part) for part in sizes.split(",") if part.strip()]
        report = asyncio.run(
            run_plans_bench(
                chosen,
                latency_ms / 1000,
                big_latency_ms / 1000,
                seed,
                lambda t: console.print(f"… {t}"),
                store,
            )
        )
        output.write_text(json.dumps(report, indent=2) + "\n")
        _print(report)
        console.print(f"written to {output}")

    @bench_app.command("steps")
    def bench_steps(
        steps: Annotated[int, typer.Option(min=2, max=1000, help="sequential no-op steps per plan")] = 50,
        repeats: Annotated[int, typer.Option(min=1, max=100, help="plans per measurement (median)")] = 10,
        store: Annotated[
            str | None, typer.Option(help="PostgreSQL server URL (default: LEDGER_STORE)")
        ] = None,
        output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path(
            "bench-steps.json"
        ),
    ) -> None:
        """Durable steps side by side with DBOS Transact on one PostgreSQL (needs the `bench`
        extra: uv sync --extra bench): per extra step, fixed cost per plan, a bare INSERT."""
        server = store or load_settings().store
        if not server.startswith("postgresql"):
            raise typer.BadParameter("needs a PostgreSQL URL: --store or LEDGER_STORE")
        try:
            report = asyncio.run(run_steps_bench(server, steps, repeats))
        except ModuleNotFoundError as error:
            raise typer.BadParameter(f"{error}: install the bench extra (uv sync --extra bench)") from None
        output.write_text(json.dumps(report, indent=2) + "\n")
        table = Table("system", "1 step ms", f"{steps} steps ms", "per extra step ms", "fixed per plan ms")
        for name, label in (("mcp_ledger", "mcp-ledger"), ("dbos", "DBOS Transact")):
            row = report[name]
            table.add_row(
                label,
                f"{row['one_step_ms']:.2f}",
                f"{row[f'{steps}_steps_ms']:.1f}",
                f"{row['per_step_ms']:.3f}",
                f"{row['fixed_ms']:.2f}",
            )
        Console().print(table)
        console.print(
            f"bare INSERT + commit {report['bare_insert_commit_ms']:.3f} ms; mcp-ledger / DBOS: "
            f"per step {report['per_step_ratio_vs_dbos']}, fixed {report['fixed_ratio_vs_dbos']}"
        )
        console.print(f"written to {output}")
