"""The `mcp-ledger` command: serve, api, worker, migrate, projections, bench.

Flags override LEDGER_* variables; each command is one exception boundary that prints a
clear message instead of a traceback for configuration and connection errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from mcp_ledger import cli_compliance, cli_grpc, cli_limits, cli_ops, cli_privacy, cli_registry
from mcp_ledger.bench.calls import run_calls_bench
from mcp_ledger.bench.state import run_state_bench
from mcp_ledger.bench.targets import distributed_env
from mcp_ledger.wiring.bootstrap import ConfigurationError, make_registry_views, make_views, running
from mcp_ledger.cli.plans import register as register_plan_commands
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.commands import NAME_PATTERN
from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.auth.dev_tokens import mint_token
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.registry.projector import RegistryProjector
from mcp_ledger.wiring.protection import open_sealer
from mcp_ledger.settings import Settings

app = typer.Typer(help="Event-sourced MCP gateway.", no_args_is_help=True, add_completion=False)
projections_app = typer.Typer(help="Read models.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")
bench_app = typer.Typer(help="Benchmarks: printed, and written as JSON.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
cli_compliance.register(app, bench_app)
cli_privacy.register(app, bench_app)
register_plan_commands(bench_app)
console = Console(stderr=True)
cli_registry.register(app, bench_app)
cli_ops.register(app, bench_app)
cli_grpc.register(app, bench_app)
cli_limits.register(app, bench_app)

BusOpt = Annotated[str | None, typer.Option("--bus", help="kafka://host:port or memory:// (LEDGER_BUS)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="event store URL (LEDGER_STORE)")]
StateOpt = Annotated[str | None, typer.Option("--state", help="redis://… or memory:// (LEDGER_STATE)")]
HostOpt = Annotated[str | None, typer.Option("--host", help="listen address (LEDGER_HOST)")]
PortOpt = Annotated[int | None, typer.Option("--port", help="listen port (LEDGER_PORT)")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="embedded data directory (LEDGER_DATA_DIR)")]
NoAuthOpt = Annotated[
    bool | None,
    typer.Option("--no-auth", help="serve everyone as the local user; loopback only (LEDGER_NO_AUTH)"),
]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


async def _serve(settings: Settings, *, api: bool, worker: bool) -> None:
    async with running(settings, api=api, worker=worker) as runtime:
        if runtime.app is None:
            await _wait_for_signal()
            return
        url = f"http://{settings.host}:{settings.port}/mcp"
        mode = "embedded" if settings.embedded else f"bus {settings.bus}"
        console.print(f"mcp-ledger listening on [bold]{url}[/bold] ({mode}, store {settings.store_url})")
        _print_how_to_connect(settings, url)
        config = uvicorn.Config(
            runtime.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # uvicorn logs through our handler (LEDGER_LOG_FORMAT)
            timeout_graceful_shutdown=int(settings.drain_timeout),
        )
        await uvicorn.Server(config).serve()


def _print_how_to_connect(settings: Settings, url: str) -> None:
    if settings.no_auth:
        console.print(
            "[yellow]no authentication[/yellow]: every client is "
            f"{settings.local_subject}@{settings.local_tenant}"
        )
        console.print(f"connect an MCP client (Streamable HTTP) to {url}")
        return
    trusted = settings.auth_jwks_url or settings.auth_keys_file or "the local development key"
    console.print(
        f"access tokens: issuer {settings.auth_issuer}, audience {settings.audience}, keys: {trusted}"
    )
    if not (settings.auth_jwks_url or settings.auth_keys_file):
        where = "" if settings.port == Settings.model_fields["port"].default else f" --port {settings.port}"
        console.print(f"mint one:  mcp-ledger token --sub alice --tenant acme --role data-analyst{where}")
    console.print(
        f"connect an MCP client (Streamable HTTP) to {url} with header  Authorization: Bearer <token>"
    )


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print("worker running; SIGTERM or Ctrl-C drains in-flight commands and stops")
    await stop.wait()


def _run(settings: Settings, *, api: bool, worker: bool) -> None:
    cli_ops.configure_process(settings, api=api, worker=worker)
    try:
        asyncio.run(_serve(settings, api=api, worker=worker))
    except ConfigurationError as error:
        raise _fail(str(error)) from None
    except OSError as error:
        raise _fail(f"cannot start: {error}") from None


@app.command()
def serve(
    bus: BusOpt = None,
    store: StoreOpt = None,
    state: StateOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataOpt = None,
    no_auth: NoAuthOpt = None,
) -> None:
    """Run API and worker in one process (embedded default: SQLite, in-process bus, memory state)."""
    settings = load_settings(
        bus=bus, store=store, state=state, host=host, port=port, data_dir=data_dir, no_auth=no_auth
    )
    _run(settings, api=True, worker=True)


@app.command()
def api(
    bus: BusOpt = None,
    state: StateOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    no_auth: NoAuthOpt = None,
) -> None:
    """Run only the MCP API (needs Kafka and Redis); scale out with more replicas."""
    _run(load_settings(bus=bus, state=state, host=host, port=port, no_auth=no_auth), api=True, worker=False)


@app.command()
def token(
    sub: Annotated[str, typer.Option("--sub", help="the subject (user id)")],
    tenant: Annotated[str, typer.Option("--tenant", help="the tenant")],
    role: Annotated[list[str] | None, typer.Option("--role", help="a role; repeat for more")] = None,
    lifetime: Annotated[int, typer.Option("--lifetime", help="seconds until it expires")] = 3600,
    data_dir: DataOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """Print an access token signed with the local development key (for development only),
    for the gateway at --host/--port (its MCP endpoint is the token's audience)."""
    settings = load_settings(data_dir=data_dir, host=host, port=port)
    if settings.auth_jwks_url or settings.auth_keys_file:
        raise _fail("this gateway trusts an authorization server's keys; get tokens from it, not from here")
    if not 0 < lifetime <= 86400:
        raise _fail("--lifetime must be between 1 and 86400 seconds")
    if not re.match(NAME_PATTERN, tenant):
        raise _fail("--tenant may hold only letters, digits, '.', '_' and '-'")
    print(
        mint_token(
            settings.data_dir,
            subject=sub,
            tenant=tenant,
            roles=role or [],
            issuer=settings.auth_issuer,
            audience=settings.audience,
            lifetime=lifetime,
            tenant_claim=settings.tenant_claim,
            roles_claim=settings.roles_claim,
        )
    )


@app.command()
def worker(bus: BusOpt = None, store: StoreOpt = None, state: StateOpt = None) -> None:
    """Run only command handling, projections and the outbox relay; scale out in one group."""
    _run(load_settings(bus=bus, store=store, state=state), api=False, worker=True)


@app.command()
def migrate(store: StoreOpt = None, data_dir: DataOpt = None) -> None:
    """Apply the event store's Alembic migrations (idempotent)."""
    settings = load_settings(store=store, data_dir=data_dir)
    if settings.store_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade_to_head(settings.store_url)
    except Exception as error:  # boundary: any driver error becomes one clear line
        raise _fail(f"migration failed: {error}") from None
    console.print(f"event store at head: {settings.store_url}")


async def _rebuild(settings: Settings) -> int:
    store = await open_event_store(settings.store_url)
    views, registry_views = make_views(settings), make_registry_views(settings)
    sealer, keys = open_sealer(settings)  # personal fields are sealed in the store
    try:
        last = await store.last_position()
        console.print(f"replaying the event store up to position {last} into {settings.state}")
        count = await SessionProjector(views, opener=EventMapper(sealer).open).rebuild(store)
        await RegistryProjector(registry_views).rebuild(store)
        return count
    finally:
        await keys.close()
        await views.close()
        await registry_views.close()
        await store.close()


@projections_app.command("rebuild")
def projections_rebuild(store: StoreOpt = None, state: StateOpt = None) -> None:
    """Drop the session and tool-registry views and rebuild them by replaying the event store."""
    settings = load_settings(store=store, state=state)
    if settings.state.startswith("memory"):
        raise _fail("in-memory projections are rebuilt at every start; give --state redis://…")
    try:
        count = asyncio.run(_rebuild(settings))
    except Exception as error:  # boundary
        raise _fail(f"rebuild failed: {error}") from None
    console.print(f"rebuilt session and registry views from {count} events")


def _print_calls_report(report: dict[str, Any]) -> None:
    table = Table(title="tool-call latency and throughput (echo)")
    for column in ("target", "calls", "p50 ms", "p99 ms", "calls/s", "stored"):
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
        )
    Console().print(table)
    for target, ratios in report["ratios_vs_plain_sdk"].items():
        Console().print(f"{target} vs plain SDK: {ratios}")


@bench_app.command("calls")
def bench_calls(
    calls: Annotated[int, typer.Option(min=20, max=100_000, help="calls per measurement")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="concurrent clients for calls/s")] = 8,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-calls.json"),
) -> None:
    """Tool-call p50/p99 and calls/s: plain SDK server, embedded gateway, and (when LEDGER_BUS,
    LEDGER_STORE and LEDGER_STATE name Kafka, PostgreSQL and Redis) the distributed gateway."""
    distributed = distributed_env(load_settings())
    if distributed is None:
        console.print("LEDGER_BUS/STORE/STATE do not name Kafka/PostgreSQL/Redis: distributed path skipped")
    report = asyncio.run(
        run_calls_bench(calls, concurrency, distributed, lambda text: console.print(f"… {text}"))
    )
    output.write_text(json.dumps(report, indent=2) + "\n")
    _print_calls_report(report)
    console.print(f"written to {output}")


@bench_app.command("state")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
