"""`mcp-ledger grpc` (serve MCPToolService over gRPC, proto/mcp_tool_service.proto) and
`mcp-ledger bench grpc`.

Runs the API half (and the worker too in embedded mode, which has no other process to run
it) and serves gRPC on LEDGER_GRPC_HOST:LEDGER_GRPC_PORT until SIGINT or SIGTERM. The HTTP
mapping of the same service is served by `serve` and `api`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mcp_ledger.bench.grpc import run_grpc_bench
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import ConfigurationError, running
from mcp_ledger.wiring.grpc import serving_grpc

console = Console(stderr=True)


async def _serve(settings: Settings) -> None:
    async with (
        running(settings, api=True, worker=settings.embedded) as runtime,
        serving_grpc(runtime, settings.grpc_host, settings.grpc_port) as port,
    ):
        who = "the local user, no authentication" if settings.no_auth else "bearer JWT in `authorization`"
        console.print(f"MCPToolService (gRPC) on {settings.grpc_host}:{port}; callers: {who}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add `grpc` and `bench grpc` to the CLI."""

    @bench_app.command("grpc")
    def bench_grpc(
        calls: Annotated[int, typer.Option(min=20, max=100_000, help="calls per measurement")] = 500,
        output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path(
            "bench-grpc.json"
        ),
    ) -> None:
        """Echo over gRPC ExecuteTool on the embedded gateway: round-trip p50/p99 and burst calls/s."""
        report = asyncio.run(run_grpc_bench(calls))
        output.write_text(json.dumps(report, indent=2) + "\n")
        table = Table("target", "calls", "p50 ms", "p99 ms", "burst calls/s", title="gRPC ExecuteTool")
        table.add_row(
            report["target"],
            str(report["calls"]),
            f"{report['p50_ms']:.2f}",
            f"{report['p99_ms']:.2f}",
            f"{report['burst_calls_per_s']:.0f}",
        )
        Console().print(table)
        console.print(f"written to {output}")

    @app.command("grpc")
    def grpc_command(
        port: Annotated[int | None, typer.Option("--port", help="gRPC port (LEDGER_GRPC_PORT)")] = None,
        host: Annotated[str | None, typer.Option("--host", help="gRPC address (LEDGER_GRPC_HOST)")] = None,
        bus: Annotated[str | None, typer.Option("--bus", help="kafka://… or memory:// (LEDGER_BUS)")] = None,
        store: Annotated[str | None, typer.Option("--store", help="event store URL (LEDGER_STORE)")] = None,
        state: Annotated[str | None, typer.Option("--state", help="redis://… or memory://")] = None,
        data_dir: Annotated[Path | None, typer.Option("--data-dir", help="embedded data directory")] = None,
        no_auth: Annotated[
            bool | None, typer.Option("--no-auth", help="serve everyone as the local user; loopback only")
        ] = None,
    ) -> None:
        """Serve MCPToolService (RegisterTool, ListCapabilities, ExecuteTool) over gRPC."""
        given: dict[str, Any] = {
            "grpc_port": port,
            "grpc_host": host,
            "bus": bus,
            "store": store,
            "state": state,
            "data_dir": data_dir,
            "no_auth": no_auth,
        }
        settings = Settings(**{key: value for key, value in given.items() if value is not None})
        if settings.no_auth and settings.grpc_host not in ("127.0.0.1", "localhost", "::1"):
            console.print("[red]error:[/red] --no-auth is only allowed on loopback (LEDGER_GRPC_HOST)")
            raise typer.Exit(code=2)
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("mcp_ledger").setLevel(settings.log_level.upper())
        try:
            asyncio.run(_serve(settings))
        except ConfigurationError as error:
            console.print(f"[red]error:[/red] {error}")
            raise typer.Exit(code=2) from None
