"""The commands that run the gateway: serve (both halves), api, worker, migrate, token.

Each is one exception boundary: configuration and connection errors become one clear line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
from collections.abc import Iterator
from typing import Annotated

import typer
import uvicorn

from mcp_ledger.cli import ops as cli_ops
from mcp_ledger.cli.options import (
    BusOpt,
    DataOpt,
    HostOpt,
    NoAuthOpt,
    PortOpt,
    StateOpt,
    StoreOpt,
    console,
    fail,
    load_settings,
)
from mcp_ledger.domain.commands import NAME_PATTERN
from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.mcp_api.auth.dev_tokens import mint_token
from mcp_ledger.producers.ports import BusError
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import ConfigurationError, running
from mcp_ledger.wiring.upstreams import front_upstreams, parse_task_support, with_upstream_hosts


class _DrainingServer(uvicorn.Server):
    """uvicorn, asked to stop by SIGTERM or Ctrl-C without being killed by it afterwards.

    uvicorn re-raises the signal once HTTP has drained, which ends the process before
    `running()` drains the bus and closes the stores; here the signal only stops uvicorn (a
    second Ctrl-C forces it), and the process exits 0 after the whole shutdown.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def _listen(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before anything is built: with port 0 the system picks
    a free port, and the settings (MCP URL, token audience) then name the port actually bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named as TCP, not left at proto 0 as socket.create_server does: asyncio turns Nagle off
    # (TCP_NODELAY) only on sockets whose proto says TCP, and with Nagle on every response
    # written in more than one piece waits out the client's delayed ACK (about 40 ms).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except BaseException:
        listener.close()
        raise
    return listener


async def _serve(settings: Settings, *, api: bool, worker: bool) -> None:
    listener = _listen(settings.host, settings.port) if api else None
    if listener is not None:
        settings = settings.model_copy(update={"port": listener.getsockname()[1]})
    try:
        await _run_parts(settings, listener, api=api, worker=worker)
    finally:
        if listener is not None:
            listener.close()


async def _run_parts(settings: Settings, listener: socket.socket | None, *, api: bool, worker: bool) -> None:
    async with running(settings, api=api, worker=worker) as runtime:
        if runtime.app is None or listener is None:
            await _wait_for_signal()
            return
        url = f"http://{settings.host}:{settings.port}/mcp"
        mode = "embedded" if settings.embedded else f"bus {settings.bus}"
        for line in await front_upstreams(settings, runtime):
            console.print(line)
        console.print(f"mcp-ledger listening on [bold]{url}[/bold] ({mode}, store {settings.store_url})")
        console.print(f"web console: {url.removesuffix('/mcp')}/console")
        _print_how_to_connect(settings, url)
        config = uvicorn.Config(
            runtime.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # uvicorn logs through our handler (LEDGER_LOG_FORMAT)
            timeout_graceful_shutdown=int(settings.drain_timeout),
        )
        await _DrainingServer(config).serve(sockets=[listener])


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
        raise fail(str(error)) from None
    except (OSError, BusError) as error:
        raise fail(f"cannot start: {error}") from None


def serve(
    bus: BusOpt = None,
    store: StoreOpt = None,
    state: StateOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataOpt = None,
    no_auth: NoAuthOpt = None,
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            help="NAME=URL of an MCP server to front for the local tenant; repeatable (LEDGER_UPSTREAMS)",
        ),
    ] = None,
    task_support: Annotated[
        list[str] | None,
        typer.Option(
            "--task-support",
            help="NAME:TOOL=optional|required: run that upstream tool's calls as MCP tasks; repeatable "
            "(LEDGER_UPSTREAM_TASK_SUPPORT)",
        ),
    ] = None,
) -> None:
    """Run API and worker in one process (embedded default: SQLite, in-process bus, memory state)."""
    try:
        modes = parse_task_support(task_support or [])
        settings = load_settings(
            bus=bus,
            store=store,
            state=state,
            host=host,
            port=port,
            data_dir=data_dir,
            no_auth=no_auth,
            upstreams=upstream or None,
            upstream_task_support=modes or None,
        )
        settings = with_upstream_hosts(settings)
    except ValueError as error:
        raise fail(str(error)) from None
    _run(settings, api=True, worker=True)


def api(
    bus: BusOpt = None,
    state: StateOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    no_auth: NoAuthOpt = None,
) -> None:
    """Run only the MCP API (needs Kafka and Redis); scale out with more replicas."""
    _run(load_settings(bus=bus, state=state, host=host, port=port, no_auth=no_auth), api=True, worker=False)


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
        raise fail("this gateway trusts an authorization server's keys; get tokens from it, not from here")
    if not 0 < lifetime <= 86400:
        raise fail("--lifetime must be between 1 and 86400 seconds")
    if not re.match(NAME_PATTERN, tenant):
        raise fail("--tenant may hold only letters, digits, '.', '_' and '-'")
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


def worker(bus: BusOpt = None, store: StoreOpt = None, state: StateOpt = None) -> None:
    """Run only command handling, projections and the outbox relay; scale out in one group."""
    _run(load_settings(bus=bus, store=store, state=state), api=False, worker=True)


def migrate(store: StoreOpt = None, data_dir: DataOpt = None) -> None:
    """Apply the event store's Alembic migrations (idempotent)."""
    settings = load_settings(store=store, data_dir=data_dir)
    if settings.store_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade_to_head(settings.store_url)
    except Exception as error:  # boundary: any driver error becomes one clear line
        raise fail(f"migration failed: {error}") from None
    console.print(f"event store at head: {settings.store_url}")


def register(app: typer.Typer) -> None:
    """Add the commands that run the gateway to the CLI."""
    for command in (serve, api, token, worker, migrate):
        app.command()(command)
