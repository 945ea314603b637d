"""Wiring: the only place that picks adapters from settings and registers handlers.

The wiring is split by area: runtime (the Runtime, secrets, blobs), api (auth, sessions,
the HTTP app), registry, plans, compliance, protection, ops and grpc; this module assembles
a worker and runs a process.

`running()` builds the parts a process needs (API, worker, or both), starts the bus and
background loops, and stops them in reverse order, draining in-flight commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from mcp_ledger.blobs.ports import BlobStore
from mcp_ledger.consumers.bindings.pointer_inputs import PointerInputs
from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.registry.data_source_secrets import DataSourceSecrets
from mcp_ledger.consumers.state_tools import state_runners
from mcp_ledger.consumers.tasks.cancellation import TaskCancellations
from mcp_ledger.consumers.tasks.log import stored_task_log
from mcp_ledger.consumers.tasks.purge import TaskPurger
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.consumers.upstreams.relay.backchannel import BusBackChannel
from mcp_ledger.consumers.upstreams.relay.progress import BusProgressRelay
from mcp_ledger.crypto.kek import KekError
from mcp_ledger.crypto.pointers import PointerSigner
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sealed import StateSealer
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.transport.checks import LOOPBACK
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.metrics_http import MetricsExposureError
from mcp_ledger.observability.tracing import span
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.kafka import KafkaBus
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import Message, MessageBus
from mcp_ledger.projections.plans.projector import PlanProjector
from mcp_ledger.projections.projector import Applier, SessionProjector
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.projector import RegistryProjector
from mcp_ledger.projections.sessions.memory import MemorySessionViewStore
from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from mcp_ledger.projections.state_loss import StateLossWatch
from mcp_ledger.projections.state_loss_redis import RedisEpochMarker
from mcp_ledger.settings import Settings
from mcp_ledger.wiring import ops as ops_wiring
from mcp_ledger.wiring.api import build_api, rate_admission
from mcp_ledger.wiring.compliance import erasure_barrier, erasure_purgers, projecting
from mcp_ledger.wiring.plans import (
    attach_calls,
    charge_tasks,
    make_plan_views,
    plan_worker,
    project_plans,
    resume_embedded_plans,
)
from mcp_ledger.wiring.protection import SqlAuditReader, kek_mismatch, kek_rotation, open_sealer, sql_keys
from mcp_ledger.wiring.registry import (
    make_registry_views,
    registered_tools,
    registry_tools,
    registry_writer,
    tool_specs,
)
from mcp_ledger.wiring.runtime import (
    ConfigurationError,
    Runtime,
    blob_store,
    payload_handler,
    publishing,
    replay_guard,
    secret_key,
)
from mcp_ledger.wiring.upstreams import (
    catalog_refresher,
    exchanged_tokens,
    upstream_calls,
    upstream_connector,
    upstream_runners,
    upstream_subscriptions,
)

__all__ = ["ConfigurationError", "Runtime", "make_bus", "make_registry_views", "make_views", "running"]

log = logging.getLogger(__name__)


def make_bus(settings: Settings) -> MessageBus:
    """The bus the settings name."""
    if settings.bus.startswith("memory"):
        return InProcessBus()
    if settings.bus.startswith("kafka://"):
        return KafkaBus.from_url(
            settings.bus,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        )
    raise ConfigurationError(f"LEDGER_BUS must be kafka://host:port or memory://, not {settings.bus!r}")


def make_views(settings: Settings) -> SessionViewStore:
    """The session view store the settings name."""
    if settings.state.startswith("memory"):
        return MemorySessionViewStore()
    if settings.state.startswith(("redis://", "rediss://", "unix://")):
        return RedisSessionViewStore.from_url(
            settings.state,
            prefix=settings.state_prefix,
            ttl=settings.session_view_ttl,
            tenant_ttl={tenant: days * 86400.0 for tenant, days in settings.retention_days.items()},
        )
    raise ConfigurationError(
        f"LEDGER_STATE must be redis://host:port/db or memory://, not {settings.state!r}"
    )


def check_roles(settings: Settings, *, api: bool, worker: bool) -> None:
    """Refuse combinations that would silently lose state between processes.

    Raises:
        ConfigurationError: e.g. a separate API process with in-memory projections.
    """
    if settings.no_auth and settings.host not in LOOPBACK:
        raise ConfigurationError("--no-auth is only allowed when listening on loopback (127.0.0.1)")
    if api and worker:
        return
    if settings.embedded:
        raise ConfigurationError("running api and worker apart needs a shared bus: set LEDGER_BUS=kafka://…")
    if settings.state.startswith("memory"):
        raise ConfigurationError(
            "running api and worker apart needs shared state: set LEDGER_STATE=redis://…"
        )
    if not settings.store:
        raise ConfigurationError("running api and worker apart needs the shared key table: set LEDGER_STORE")


async def _open_protection(
    settings: Settings, runtime: Runtime, stack: AsyncExitStack, *, worker: bool
) -> None:
    if worker and settings.store_url.startswith("sqlite"):
        # The embedded store migrates itself; PostgreSQL is migrated by `mcp-ledger migrate`.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await upgrade_to_head_async(settings.store_url)
    try:
        runtime.sealer, runtime.keys = open_sealer(settings)
    except KekError as error:
        raise ConfigurationError(f"key-encryption key: {error}") from error
    stack.push_async_callback(runtime.keys.close)
    runtime.caches.register(runtime.keys)
    try:
        await kek_mismatch(sql_keys(runtime.keys))  # said at start, not only at the first call
    except SQLAlchemyError as error:  # e.g. not migrated yet: /readyz says so later
        log.warning("could not check the stored keys against this process's KEK: %s", error)
    runtime.audit = SqlAuditReader(settings)
    stack.push_async_callback(runtime.audit.close)


async def _start_worker(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> OutboxRelay:
    assert runtime.sealer is not None
    assert runtime.keys is not None
    store = ops_wiring.instrument_store(await open_event_store(settings.store_url), runtime.metrics)
    stack.push_async_callback(store.close)
    runtime.store = store
    relay = OutboxRelay(store, runtime.bus, settings.events_topic)
    mapper = EventMapper(runtime.sealer)
    runtime.plans = plan_worker(settings, runtime.bus, store, publishing(relay), mapper, scopes=runtime.keys)
    registry_projector = RegistryProjector(runtime.registry_views)
    catalog = ToolCatalog(tool_specs(settings), runtime.registry_views)
    privacy = PrivacyChoices(store, publishing(relay))
    blobs = await blob_store(settings, runtime, stack)
    runtime.replays = replays = replay_guard(settings)
    stack.push_async_callback(replays.close)
    pointers = PointerInputs(PointerSigner(secret_key(settings, "pointers/v1")), blobs, replays)
    relay_progress = BusProgressRelay(runtime.bus.publish, settings.progress_topic, runtime.sealer)
    exchanged = exchanged_tokens(settings)
    runtime.caches.register(exchanged)  # an erased subject's upstream tokens go with it
    backchannel = BusBackChannel(runtime.bus.publish, settings.progress_topic, runtime.sealer)

    async def hear_reply(message: Message) -> None:
        await backchannel.on_reply(message.headers, message.value)

    runtime.bus.subscribe(settings.reply_topic, hear_reply, group=None)
    connector = upstream_connector(settings, exchanged)
    upstreams = upstream_calls(
        settings,
        store,
        mapper,
        privacy,
        progress=relay_progress,
        metrics=runtime.metrics,
        connector=connector,
        backchannel=backchannel,
        task_log=stored_task_log(store, runtime.sealer),
    )
    runtime.upstream_health = upstreams.breakers.overview
    runtime.caches.register(upstreams.sessions)  # an erasure closes the subject's upstream sessions
    registered = registered_tools(
        settings, catalog, DataSourceSecrets(store, mapper), privacy, pointers, upstreams
    )
    stack.push_async_callback(registered.close)
    writer = registry_writer(settings, store, registry_projector, relay, mapper)
    stack.push_async_callback(catalog_refresher(settings, writer, upstreams, connector, exchanged).close)
    subscriptions = upstream_subscriptions(catalog, upstreams, connector)
    runtime.caches.register(subscriptions)  # an erased subject's subscriptions record nothing more
    runners = ops_wiring.instrument_runners(
        {
            **BUILTIN_RUNNERS,
            **_state_runners(settings, blobs, runtime.keys),
            **registry_tools(settings, writer).runners(),
            **upstream_runners(settings, writer, upstreams, catalog, exchanged, subscriptions),
            **privacy.runners(),
        }
    )
    handler = CommandHandler(
        store,
        tool_specs(settings),
        runners,
        publishing(relay),
        registered=registered,
        session_ttl=settings.session_ttl,
        session_cache_seconds=settings.key_cache_seconds,
        sealer=runtime.sealer,
        others=runtime.plans.commands.handle,
        scopes=runtime.keys,
        cancellations=TaskCancellations(store, poll_s=settings.task_cancel_poll_ms / 1000),
    )
    runtime.caches.register(handler.sessions)
    purger = TaskPurger(store, stored_task_log(store, runtime.sealer))
    purger.start(settings.task_purge_interval_s)
    stack.push_async_callback(purger.close)
    subscriptions.attach(handler.handle)
    attach_calls(runtime.plans, handler, catalog)
    charge_tasks(runtime.plans, runtime.rates)
    await project_plans(settings, runtime.bus, store, runtime.plan_views, mapper, caches=runtime.caches)
    runtime.bus.subscribe(
        settings.commands_topic,
        payload_handler(handler.handle_payload),
        group=settings.worker_group,
        concurrency=settings.worker_concurrency,
        in_flight=settings.worker_in_flight,
    )
    purgers = erasure_purgers(
        settings, stack, views=runtime.views, plan_views=runtime.plan_views, blobs=blobs
    )
    runtime.erasure = ErasureHandler(
        store,
        runtime.keys,
        purgers,
        publishing(relay),
        barrier=runtime.barrier,
        keks=kek_rotation(settings, sql_keys(runtime.keys)),
    )
    runtime.bus.subscribe(
        settings.compliance_topic,
        payload_handler(runtime.erasure.handle_payload),
        group=settings.compliance_group,
    )
    projector = SessionProjector(runtime.views, opener=EventMapper(runtime.sealer).open, store=store)
    if isinstance(runtime.views, MemorySessionViewStore):
        count = await projector.rebuild(store)
        await registry_projector.rebuild(store)
        log.info("projections rebuilt from %d stored events", count)

    async def project(payload: bytes) -> None:
        with span("project ledger.events"):
            await projector.handle_payload(payload)
            await registry_projector.handle_payload(payload)
        runtime.metrics.note_projected(payload)

    runtime.bus.subscribe(
        settings.events_topic,
        payload_handler(projecting(runtime.caches, project)),
        group=settings.projection_group,
        concurrency=settings.projection_concurrency,
    )
    await ops_wiring.start_worker_ops(settings, runtime.metrics, store, stack)
    plan_projector = PlanProjector(runtime.plan_views, opener=mapper.open, store=store)
    _watch_state_loss(
        settings, store, [projector.apply, registry_projector.apply, plan_projector.apply], stack
    )
    return relay


def _watch_state_loss(
    settings: Settings, store: EventStore, appliers: list[Applier], stack: AsyncExitStack
) -> None:
    """Replay the store into the Redis views if Redis loses its data (projections/state_loss.py)."""
    if settings.state.startswith("memory"):
        return
    marker = RedisEpochMarker.from_url(settings.state, settings.state_prefix)
    stop = asyncio.Event()
    task = asyncio.create_task(StateLossWatch(marker, store, appliers).run(stop))
    stack.push_async_callback(marker.close)
    stack.push_async_callback(_stop_tasks, [task], stop)


def _state_runners(settings: Settings, blobs: BlobStore, keys: KeyStore) -> dict[str, Any]:
    signer = PointerSigner(secret_key(settings, "pointers/v1"))
    sealer = StateSealer(keys, secret_key(settings, "sealed-state/v2"))
    return state_runners(blobs, signer, sealer, pointer_ttl=settings.pointer_ttl)


@asynccontextmanager
async def running(settings: Settings, *, api: bool, worker: bool) -> AsyncIterator[Runtime]:
    """Build and start the parts of a process; stop them on exit.

    Raises:
        ConfigurationError: settings that cannot work for these roles.
    """
    check_roles(settings, api=api, worker=worker)
    metrics = LedgerMetrics()
    runtime = Runtime(
        settings=settings,
        bus=ops_wiring.instrument_bus(make_bus(settings), settings, metrics),
        metrics=metrics,
        views=make_views(settings),
        registry_views=make_registry_views(settings),
        plan_views=make_plan_views(settings),
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(runtime.views.close)
        stack.push_async_callback(runtime.registry_views.close)
        stack.push_async_callback(runtime.plan_views.close)
        await _open_protection(settings, runtime, stack, worker=worker)
        runtime.rates = rate_admission(settings, stack)
        try:
            runtime.metrics_port = ops_wiring.serve_metrics_port(settings, metrics, stack)
        except MetricsExposureError as error:
            raise ConfigurationError(str(error)) from error
        runtime.barrier = await erasure_barrier(settings, runtime.caches, stack)
        relay = await _start_worker(settings, runtime, stack) if worker else None
        if api:
            if runtime.store is None and not settings.store_url.startswith("sqlite"):
                runtime.store = await open_event_store(settings.store_url)
                stack.push_async_callback(runtime.store.close)
            runtime.app = await build_api(settings, runtime, stack)
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
