"""Wiring: the only place that picks adapters from settings and registers handlers.

`running()` builds the parts a process needs (API, worker, or both), starts the bus and
background loops, and stops them in reverse order, draining in-flight commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.consumers.command_handler import AppendedCallback, CommandHandler
from mcp_ledger.consumers.data_sources import DataSourcePolicy
from mcp_ledger.consumers.http_runner import HttpRunnerConfig, HttpToolRunner
from mcp_ledger.consumers.registered_tools import RegisteredTools
from mcp_ledger.consumers.registry_tools import RegistryTools
from mcp_ledger.consumers.registry_writer import RegistryWriter
from mcp_ledger.consumers.sql_runner import SqlToolRunner
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.registration import RegistrationPolicy
from mcp_ledger.domain.registry_tools import registry_tool_specs
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.mcp_api.identity import LocalIdentityResolver
from mcp_ledger.mcp_api.registration_http import RegistrationHttp
from mcp_ledger.mcp_api.server import LedgerMcp
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.kafka import KafkaBus
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import BusError, Handler, Message, MessageBus
from mcp_ledger.projections.catalog import ToolCatalog
from mcp_ledger.projections.memory import MemorySessionViewStore
from mcp_ledger.projections.ports import SessionViewStore
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.redis import RedisSessionViewStore
from mcp_ledger.projections.registry_memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry_ports import RegistryViewStore
from mcp_ledger.projections.registry_projector import RegistryProjector
from mcp_ledger.projections.registry_redis import RedisRegistryViewStore
from mcp_ledger.projections.registry_watcher import RegistryWatcher, ToolsChanged
from mcp_ledger.settings import Settings

log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The settings cannot work together; the message says how to fix them."""


@dataclass
class Runtime:
    """The running parts of one process."""

    settings: Settings
    bus: MessageBus
    views: SessionViewStore
    registry_views: RegistryViewStore
    store: EventStore | None = None
    app: Starlette | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    tools_changed: list[ToolsChanged] = field(default_factory=list)
    """Called with (tenant, session id or None for all its sessions) when a tool set changed."""

    async def notify_tools_changed(self, tenant: str, session_id: str | None) -> None:
        for listener in self.tools_changed:
            try:
                await listener(tenant, session_id)
            except Exception:  # boundary: one listener's failure must not starve the others
                log.exception("tools-changed listener failed")


def make_bus(settings: Settings) -> MessageBus:
    """The bus the settings name."""
    if settings.bus.startswith("memory"):
        return InProcessBus()
    if settings.bus.startswith("kafka://"):
        return KafkaBus.from_url(settings.bus)
    raise ConfigurationError(f"LEDGER_BUS must be kafka://host:port or memory://, not {settings.bus!r}")


def make_views(settings: Settings) -> SessionViewStore:
    """The session view store the settings name."""
    if settings.state.startswith("memory"):
        return MemorySessionViewStore()
    if settings.state.startswith(("redis://", "rediss://", "unix://")):
        return RedisSessionViewStore.from_url(settings.state, prefix=settings.state_prefix)
    raise ConfigurationError(
        f"LEDGER_STATE must be redis://host:port/db or memory://, not {settings.state!r}"
    )


def make_registry_views(settings: Settings) -> RegistryViewStore:
    """The registry view store beside the session views (same backend, same prefix)."""
    if settings.state.startswith("memory"):
        return MemoryRegistryViewStore()
    return RedisRegistryViewStore.from_url(settings.state, prefix=settings.state_prefix)


def tool_specs(settings: Settings) -> dict[str, ToolSpec]:
    """Built-in tools and the registry's own tools."""
    return {**builtin_catalog(), **registry_tool_specs(settings.registering_role)}


def _registered_tools(settings: Settings, catalog: ToolCatalog) -> RegisteredTools:
    config = HttpRunnerConfig(
        allowed_hosts=settings.allowed_hosts,
        client_cert=str(settings.http_client_cert) if settings.http_client_cert else None,
        client_key=str(settings.http_client_key) if settings.http_client_key else None,
        ca_bundle=str(settings.http_ca_bundle) if settings.http_ca_bundle else None,
    )
    return RegisteredTools(catalog, HttpToolRunner(config), SqlToolRunner())


def _registry_tools(
    settings: Settings, store: EventStore, projector: RegistryProjector, relay: OutboxRelay
) -> RegistryTools:
    policy = RegistrationPolicy(allowed_hosts=settings.allowed_hosts)
    writer = RegistryWriter(store, projector, _publishing(relay), policy, tool_specs(settings))
    sources = DataSourcePolicy(
        allowlist=tuple(d.strip() for d in settings.data_source_allowlist.split(",") if d.strip()),
        sqlite_dir=settings.data_source_sqlite_dir,
    )
    return RegistryTools(writer, settings.allowed_hosts, sources)


def check_roles(settings: Settings, *, api: bool, worker: bool) -> None:
    """Refuse combinations that would silently lose state between processes.

    Raises:
        ConfigurationError: e.g. a separate API process with in-memory projections.
    """
    if api and worker:
        return
    if settings.embedded:
        raise ConfigurationError("running api and worker apart needs a shared bus: set LEDGER_BUS=kafka://…")
    if settings.state.startswith("memory"):
        raise ConfigurationError(
            "running api and worker apart needs shared state: set LEDGER_STATE=redis://…"
        )


def _publishing(relay: OutboxRelay) -> AppendedCallback:
    async def on_appended(events: Sequence[StoredEvent]) -> None:
        try:
            await relay.publish(events)
        except BusError:
            # The events are stored and still in the outbox: the sweep publishes them.
            log.warning("fast-path publish failed; %d events left to the outbox sweep", len(events))

    return on_appended


def _payload_handler(handle: Callable[[bytes], Awaitable[None]]) -> Handler:
    async def on_message(message: Message) -> None:
        await handle(message.value)

    return on_message


async def _start_worker(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> OutboxRelay:
    if settings.store_url.startswith("sqlite"):
        # The embedded store migrates itself; PostgreSQL is migrated by `mcp-ledger migrate`.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade_to_head_async(settings.store_url)
    store = await open_event_store(settings.store_url)
    stack.push_async_callback(store.close)
    runtime.store = store
    relay = OutboxRelay(store, runtime.bus, settings.events_topic)
    registry_projector = RegistryProjector(runtime.registry_views)
    registered = _registered_tools(settings, ToolCatalog(tool_specs(settings), runtime.registry_views))
    stack.push_async_callback(registered.close)
    runners = {**BUILTIN_RUNNERS, **_registry_tools(settings, store, registry_projector, relay).runners()}
    handler = CommandHandler(store, tool_specs(settings), runners, _publishing(relay), registered=registered)
    runtime.bus.subscribe(
        settings.commands_topic,
        _payload_handler(handler.handle_payload),
        group=settings.worker_group,
        concurrency=settings.worker_concurrency,
    )
    projector = SessionProjector(runtime.views)
    if isinstance(runtime.views, MemorySessionViewStore):
        count = await projector.rebuild(store)
        await registry_projector.rebuild(store)
        log.info("projections rebuilt from %d stored events", count)

    async def project(payload: bytes) -> None:
        await projector.handle_payload(payload)
        await registry_projector.handle_payload(payload)

    runtime.bus.subscribe(
        settings.events_topic,
        _payload_handler(project),
        group=settings.projection_group,
        concurrency=settings.projection_concurrency,
    )
    return relay


def _health(runtime: Runtime) -> Route:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "embedded": runtime.settings.embedded})

    return Route("/healthz", healthz)


def _build_api(settings: Settings, runtime: Runtime) -> Starlette:
    gateway = CommandGateway(runtime.bus, settings.commands_topic, timeout=settings.call_timeout)
    runtime.bus.subscribe(settings.events_topic, gateway.on_event, group=None)
    catalog = ToolCatalog(tool_specs(settings), runtime.registry_views)
    watcher = RegistryWatcher(
        RegistryProjector(runtime.registry_views), catalog, runtime.notify_tools_changed
    )

    async def watch(message: Message) -> None:
        await watcher.on_event(message.headers.get("event_type", ""), message.value)

    runtime.bus.subscribe(settings.events_topic, watch, group=None)
    identities = LocalIdentityResolver(settings.local_tenant, settings.local_subject)
    registration = RegistrationHttp(gateway, catalog, runtime.views, identities)
    ledger = LedgerMcp(
        tool_specs(settings),
        gateway,
        runtime.views,
        identities,
        max_argument_bytes=settings.max_argument_bytes,
        registry=catalog,
    )
    return ledger.build().streamable_http_app(
        stateless_http=True,
        json_response=True,
        host=settings.host,
        custom_starlette_routes=[_health(runtime), *registration.routes()],
    )


@asynccontextmanager
async def running(settings: Settings, *, api: bool, worker: bool) -> AsyncIterator[Runtime]:
    """Build and start the parts of a process; stop them on exit.

    Raises:
        ConfigurationError: settings that cannot work for these roles.
    """
    check_roles(settings, api=api, worker=worker)
    runtime = Runtime(
        settings=settings,
        bus=make_bus(settings),
        views=make_views(settings),
        registry_views=make_registry_views(settings),
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(runtime.views.close)
        stack.push_async_callback(runtime.registry_views.close)
        relay = await _start_worker(settings, runtime, stack) if worker else None
        if api:
            runtime.app = _build_api(settings, runtime)
        await runtime.bus.start()
        stack.push_async_callback(runtime.bus.stop)
        if relay is not None:
            stop = asyncio.Event()
            runtime.tasks.append(asyncio.create_task(relay.run(stop)))
            stack.push_async_callback(_stop_tasks, runtime.tasks, stop)
        yield runtime


async def _stop_tasks(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
