"""The `mcp-ledger` command: one Typer app, each area's commands in its own module.

The console script (and `python -m mcp_ledger.cli`) runs `app`; each command is one
exception boundary that prints a clear message instead of a traceback.
"""

from __future__ import annotations

import typer

from mcp_ledger.cli import bench as cli_bench
from mcp_ledger.cli import compliance as cli_compliance
from mcp_ledger.cli import grpc as cli_grpc
from mcp_ledger.cli import limits as cli_limits
from mcp_ledger.cli import ops as cli_ops
from mcp_ledger.cli import plans as cli_plans
from mcp_ledger.cli import privacy as cli_privacy
from mcp_ledger.cli import registry as cli_registry
from mcp_ledger.cli import serve as cli_serve
from mcp_ledger.cli.federation import servers as cli_servers

app = typer.Typer(help="Event-sourced MCP gateway.", no_args_is_help=True, add_completion=False)
bench_app = typer.Typer(help="Benchmarks: printed, and written as JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
cli_serve.register(app)
cli_servers.register(app)
cli_bench.register(bench_app)
cli_compliance.register(app, bench_app)
cli_privacy.register(app, bench_app)
cli_plans.register(bench_app)
cli_registry.register(app, bench_app)
cli_ops.register(app, bench_app)
cli_grpc.register(app, bench_app)
cli_limits.register(app, bench_app)


def main() -> None:
    app()
