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

from mcp_ledger.bootstrap_plans import (
    PlanWorker,
    attach_calls,
    make_plan_views,
    plan_tools,
    plan_worker,
    project_plans,
    resume_embedded_plans,
)
from mcp_ledger.consumers.command_handler import AppendedCallback, CommandHandler
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.mcp_api.identity import LocalIdentityResolver
from mcp_ledger.mcp_api.server import LedgerMcp
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.kafka import KafkaBus
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import BusError, Handler, Message, MessageBus
from mcp_ledger.projections.memory import MemorySessionViewStore
from mcp_ledger.projections.plan_ports import PlanViewStore
from mcp_ledger.projections.ports import SessionViewStore
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.redis import RedisSessionViewStore
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
    plan_views: PlanViewStore
    store: EventStore | None = None
    app: Starlette | None = None
    plans: PlanWorker | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


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
    runtime.plans = plan_worker(settings, runtime.bus, store, _publishing(relay))
    handler = CommandHandler(
        store, builtin_catalog(), BUILTIN_RUNNERS, _publishing(relay), others=runtime.plans.commands.handle
    )
    attach_calls(runtime.plans, handler)
    await project_plans(settings, runtime.bus, store, runtime.plan_views)
    runtime.bus.subscribe(
        settings.commands_topic,
        _payload_handler(handler.handle_payload),
        group=settings.worker_group,
        concurrency=settings.worker_concurrency,
    )
    projector = SessionProjector(runtime.views)
    if isinstance(runtime.views, MemorySessionViewStore):
        count = await projector.rebuild(store)
        log.info("projections rebuilt from %d stored events", count)
    runtime.bus.subscribe(
        settings.events_topic,
        _payload_handler(projector.handle_payload),
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
    identities = LocalIdentityResolver(settings.local_tenant, settings.local_subject)
    ledger = LedgerMcp(
        builtin_catalog(),
        gateway,
        runtime.views,
        identities,
        max_argument_bytes=settings.max_argument_bytes,
        plans=plan_tools(settings, gateway, runtime.plan_views, identities),
    )
    return ledger.build().streamable_http_app(
        stateless_http=True,
        json_response=True,
        host=settings.host,
        custom_starlette_routes=[_health(runtime)],
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
        plan_views=make_plan_views(settings),
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(runtime.views.close)
        stack.push_async_callback(runtime.plan_views.close)
        relay = await _start_worker(settings, runtime, stack) if worker else None
        if api:
            runtime.app = _build_api(settings, runtime)
        await runtime.bus.start()
        stack.push_async_callback(runtime.bus.stop)
        if relay is not None:
            stop = asyncio.Event()
            runtime.tasks.append(asyncio.create_task(relay.run(stop)))
            stack.push_async_callback(_stop_tasks, runtime.tasks, stop)
        if runtime.plans is not None:
            # Registered after bus.stop, so it runs first: plan runs end instead of draining.
            stack.push_async_callback(runtime.plans.executor.stop)
            await resume_embedded_plans(settings, runtime.plans, runtime.plan_views)
        yield runtime


async def _stop_tasks(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
