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
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger import bootstrap_ops
from mcp_ledger.blobs.memory import MemoryReplayGuard
from mcp_ledger.blobs.ports import BlobStore, ReplayGuard
from mcp_ledger.blobs.redis import RedisReplayGuard
from mcp_ledger.bootstrap_compliance import BlobSettingsError, erasure_purgers, open_blob_store
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
from mcp_ledger.consumers.data_source_secrets import DataSourceSecrets
from mcp_ledger.consumers.data_sources import DataSourcePolicy
from mcp_ledger.consumers.erasure import ErasureHandler
from mcp_ledger.consumers.http_runner import HttpRunnerConfig, HttpToolRunner
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.pointer_inputs import PointerInputs
from mcp_ledger.consumers.privacy import PrivacyChoices
from mcp_ledger.consumers.registered_tools import RegisteredTools
from mcp_ledger.consumers.registry_tools import RegistryTools
from mcp_ledger.consumers.registry_writer import RegistryWriter
from mcp_ledger.consumers.sql_runner import SqlToolRunner
from mcp_ledger.consumers.state_tools import state_runners
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.kek import KekError
from mcp_ledger.crypto.pointers import PointerSigner
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealed import StateSealer
from mcp_ledger.crypto.secret import derive_key, master_secret
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.privacy import privacy_tool_specs
from mcp_ledger.domain.registration import RegistrationPolicy
from mcp_ledger.domain.registry_tools import registry_tool_specs
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.limits.memory import MemoryRateLimiter
from mcp_ledger.limits.policy import LimitFormatError, RatePolicy
from mcp_ledger.limits.ports import RateLimiter
from mcp_ledger.limits.redis import RedisRateLimiter
from mcp_ledger.mcp_api.admin import admin_routes
from mcp_ledger.mcp_api.audit import AuditResource
from mcp_ledger.mcp_api.auth import (
    JwksKeys,
    JwtVerifier,
    KeySource,
    StaticKeys,
    TokenIdentityResolver,
    load_key_file,
)
from mcp_ledger.mcp_api.blob_reads import BlobReader
from mcp_ledger.mcp_api.dev_tokens import dev_public_keys
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.http_app import LOOPBACK, AuthSetup, build_http_app, install_request_state
from mcp_ledger.mcp_api.identity import Identity, IdentityResolver, LocalIdentityResolver
from mcp_ledger.mcp_api.notifications import NotificationHub
from mcp_ledger.mcp_api.opt_outs import opt_out_routes
from mcp_ledger.mcp_api.pipelines import PipelineTool
from mcp_ledger.mcp_api.rate_limits import RateGuard
from mcp_ledger.mcp_api.registration_http import RegistrationHttp
from mcp_ledger.mcp_api.server import LedgerMcp
from mcp_ledger.mcp_api.session_layer import SessionCloser, SessionOpener, SessionOpenError
from mcp_ledger.mcp_api.tool_service import ToolService
from mcp_ledger.mcp_api.transport_sessions import (
    MemoryTransportSessions,
    TransportSessionPurger,
    TransportSessions,
)
from mcp_ledger.mcp_api.transport_sessions_redis import RedisTransportSessions
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.tracing import span
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.kafka import KafkaBus
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import BusError, Handler, Message, MessageBus
from mcp_ledger.projections.catalog import ToolCatalog
from mcp_ledger.projections.memory import MemorySessionViewStore
from mcp_ledger.projections.plan_ports import PlanViewStore
from mcp_ledger.projections.plan_projector import PlanProjector
from mcp_ledger.projections.ports import SessionViewStore
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.redis import RedisSessionViewStore
from mcp_ledger.projections.registry_memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry_ports import RegistryViewStore
from mcp_ledger.projections.registry_projector import RegistryProjector
from mcp_ledger.projections.registry_redis import RedisRegistryViewStore
from mcp_ledger.projections.registry_watcher import RegistryWatcher, ToolsChanged
from mcp_ledger.projections.state_loss import Applier, StateLossWatch
from mcp_ledger.projections.state_loss_redis import RedisEpochMarker
from mcp_ledger.protection import SqlAuditReader, evict_on_erasure, open_sealer
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
    plan_views: PlanViewStore
    store: EventStore | None = None
    sealer: RecordSealer | None = None
    keys: CachingKeyStore | None = None
    audit: SqlAuditReader | None = None
    erasure: ErasureHandler | None = None
    app: Starlette | None = None
    hub: NotificationHub | None = None
    plans: PlanWorker | None = None
    metrics: LedgerMetrics = field(default_factory=LedgerMetrics)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    tool_service: ToolService | None = None
    """MCPToolService for other transports (gRPC); its HTTP mapping is already in `app`."""
    verifier: JwtVerifier | None = None
    replays: ReplayGuard | None = None
    """One-time pointers read: shared by resources/read and tools' pointer arguments."""
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
        return RedisSessionViewStore.from_url(
            settings.state,
            prefix=settings.state_prefix,
            ttl=settings.session_view_ttl,
            tenant_ttl={tenant: days * 86400.0 for tenant, days in settings.retention_days.items()},
        )
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
    return {**builtin_catalog(), **registry_tool_specs(settings.registering_role), **privacy_tool_specs()}


def _registered_tools(
    settings: Settings,
    catalog: ToolCatalog,
    secrets: DataSourceSecrets,
    privacy: PrivacyChoices,
    pointers: PointerInputs,
) -> RegisteredTools:
    config = HttpRunnerConfig(
        allowed_hosts=settings.allowed_hosts,
        client_cert=str(settings.http_client_cert) if settings.http_client_cert else None,
        client_key=str(settings.http_client_key) if settings.http_client_key else None,
        ca_bundle=str(settings.http_ca_bundle) if settings.http_ca_bundle else None,
    )
    return RegisteredTools(
        catalog, HttpToolRunner(config), SqlToolRunner(), secrets, privacy=privacy, pointers=pointers
    )


def _registry_tools(
    settings: Settings,
    store: EventStore,
    projector: RegistryProjector,
    relay: OutboxRelay,
    mapper: EventMapper,
) -> RegistryTools:
    policy = RegistrationPolicy(allowed_hosts=settings.allowed_hosts)
    writer = RegistryWriter(store, projector, _publishing(relay), policy, tool_specs(settings), mapper=mapper)
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
    runtime.audit = SqlAuditReader(settings)
    stack.push_async_callback(runtime.audit.close)


async def _start_worker(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> OutboxRelay:
    assert runtime.sealer is not None
    assert runtime.keys is not None
    store = bootstrap_ops.instrument_store(await open_event_store(settings.store_url), runtime.metrics)
    stack.push_async_callback(store.close)
    runtime.store = store
    relay = OutboxRelay(store, runtime.bus, settings.events_topic)
    mapper = EventMapper(runtime.sealer)
    runtime.plans = plan_worker(settings, runtime.bus, store, _publishing(relay), mapper)
    registry_projector = RegistryProjector(runtime.registry_views)
    catalog = ToolCatalog(tool_specs(settings), runtime.registry_views)
    privacy = PrivacyChoices(store, _publishing(relay))
    blobs = await _blob_store(settings, runtime, stack)
    runtime.replays = replays = _replay_guard(settings)
    stack.push_async_callback(replays.close)
    pointers = PointerInputs(PointerSigner(_secret(settings, "pointers/v1")), blobs, replays)
    registered = _registered_tools(settings, catalog, DataSourceSecrets(store, mapper), privacy, pointers)
    stack.push_async_callback(registered.close)
    runners = bootstrap_ops.instrument_runners(
        {
            **BUILTIN_RUNNERS,
            **_state_runners(settings, blobs),
            **_registry_tools(settings, store, registry_projector, relay, mapper).runners(),
            **privacy.runners(),
        }
    )
    handler = CommandHandler(
        store,
        tool_specs(settings),
        runners,
        _publishing(relay),
        registered=registered,
        session_ttl=settings.session_ttl,
        sealer=runtime.sealer,
        others=runtime.plans.commands.handle,
    )
    attach_calls(runtime.plans, handler)
    await project_plans(settings, runtime.bus, store, runtime.plan_views, mapper)
    runtime.bus.subscribe(
        settings.commands_topic,
        _payload_handler(handler.handle_payload),
        group=settings.worker_group,
        concurrency=settings.worker_concurrency,
    )
    purgers = erasure_purgers(
        settings, stack, views=runtime.views, plan_views=runtime.plan_views, blobs=blobs
    )
    runtime.erasure = ErasureHandler(store, runtime.keys, purgers, _publishing(relay))
    runtime.bus.subscribe(
        settings.compliance_topic,
        _payload_handler(runtime.erasure.handle_payload),
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
        _payload_handler(project),
        group=settings.projection_group,
        concurrency=settings.projection_concurrency,
    )
    await bootstrap_ops.start_worker_ops(settings, runtime.metrics, store, stack)
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


def _health(runtime: Runtime) -> Route:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "embedded": runtime.settings.embedded})

    return Route("/healthz", healthz)


def _secret(settings: Settings, purpose: str) -> bytes:
    return derive_key(master_secret(settings.secret_key, settings.data_dir), purpose)


def _state_runners(settings: Settings, blobs: BlobStore) -> dict[str, Any]:
    signer = PointerSigner(_secret(settings, "pointers/v1"))
    sealer = StateSealer(_secret(settings, "sealed-state/v1"))
    return state_runners(blobs, signer, sealer, pointer_ttl=settings.pointer_ttl)


async def _blob_store(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> BlobStore:
    assert runtime.keys is not None
    try:
        return open_blob_store(settings, runtime.keys, stack)
    except BlobSettingsError as error:
        raise ConfigurationError(str(error)) from error


def _key_source(settings: Settings) -> KeySource:
    if settings.auth_jwks_url:
        return JwksKeys(settings.auth_jwks_url)
    if settings.auth_keys_file is not None:
        return StaticKeys(tuple(load_key_file(settings.auth_keys_file)))
    return dev_public_keys(settings.data_dir)


def _auth(settings: Settings) -> tuple[AuthSetup | None, IdentityResolver]:
    if settings.no_auth:
        return None, LocalIdentityResolver(settings.local_tenant, settings.local_subject)
    verifier = JwtVerifier(
        _key_source(settings),
        issuer=settings.auth_issuer,
        audience=settings.audience,
        algorithms=settings.auth_algorithms,
        tenant_claim=settings.tenant_claim,
        roles_claim=settings.roles_claim,
    )
    servers = settings.authorization_servers or [
        settings.auth_issuer if settings.auth_issuer.startswith("http") else settings.base_url
    ]
    setup = AuthSetup(verifier, settings.mcp_url, servers)
    return setup, TokenIdentityResolver(settings.tenant_claim, settings.roles_claim)


def _session_commands(gateway: CommandGateway) -> tuple[SessionOpener, SessionCloser]:
    async def open_session(identity: Identity) -> str:
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=new_session_id(),
            tool_name="session_open",
        )
        try:
            event = await gateway.call(command)
        except (CommandTimeoutError, BusError) as error:
            raise SessionOpenError(f"could not open a session: {error}") from error
        if event.get("event_type") != "ToolSucceeded" or command.session_id is None:
            raise SessionOpenError("could not open a session")
        return command.session_id

    async def close_session(identity: Identity, session_id: str) -> None:
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=session_id,
            tool_name="session_close",
        )
        try:
            await gateway.call(command)
        except (CommandTimeoutError, BusError):
            log.warning("session %s: close not confirmed; its transport session ends anyway", session_id)

    return open_session, close_session


def _transport_sessions(settings: Settings) -> TransportSessions:
    if settings.state.startswith("memory"):
        return MemoryTransportSessions()
    return RedisTransportSessions.from_url(settings.state, settings.state_prefix)


def _replay_guard(settings: Settings) -> ReplayGuard:
    if settings.state.startswith("memory"):
        return MemoryReplayGuard()
    return RedisReplayGuard.from_url(settings.state, settings.state_prefix)


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """The limiter beside the session views: shared through Redis, or this process's own."""
    if settings.state.startswith("memory"):
        return MemoryRateLimiter(refusal_ttl=settings.rate_refusal_ttl)
    return RedisRateLimiter.from_url(
        settings.state, settings.state_prefix, refusal_ttl=settings.rate_refusal_ttl
    )


def _rate_guard(settings: Settings, stack: AsyncExitStack) -> RateGuard | None:
    try:
        policy = RatePolicy.parse(settings.rate_tenant, settings.rate_subject, settings.rate_tenant_overrides)
    except LimitFormatError as error:
        raise ConfigurationError(f"LEDGER_RATE_*: {error}") from error
    if not policy.active:
        return None
    limiter = make_rate_limiter(settings)
    stack.push_async_callback(limiter.close)
    return RateGuard(policy, limiter)


def _notify_clients(hub: NotificationHub) -> Callable[[str, str | None], Awaitable[None]]:
    async def tools_changed(tenant: str, session_id: str | None) -> None:
        hub.tools_changed(tenant, session_id)

    return tools_changed


async def _build_api(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> Starlette:
    assert runtime.keys is not None
    gateway = CommandGateway(
        runtime.bus, settings.commands_topic, timeout=settings.call_timeout, sealer=runtime.sealer
    )
    runtime.bus.subscribe(settings.events_topic, gateway.on_event, group=None)
    runtime.bus.subscribe(settings.events_topic, evict_on_erasure(runtime.keys), group=None)
    hub = NotificationHub(runtime.store.read_stream if runtime.store is not None else None)
    runtime.hub = hub
    runtime.bus.subscribe(settings.events_topic, hub.on_event, group=None)
    runtime.tools_changed.append(_notify_clients(hub))
    catalog = ToolCatalog(tool_specs(settings), runtime.registry_views)
    watcher = RegistryWatcher(
        RegistryProjector(runtime.registry_views), catalog, runtime.notify_tools_changed
    )

    async def watch(message: Message) -> None:
        await watcher.on_event(message.headers.get("event_type", ""), message.value)

    runtime.bus.subscribe(settings.events_topic, watch, group=None)
    auth, identities = _auth(settings)
    replays = runtime.replays
    if replays is None:  # an API without a worker in this process
        replays = _replay_guard(settings)
        stack.push_async_callback(replays.close)
    sessions = _transport_sessions(settings)
    stack.push_async_callback(sessions.close)
    blobs = BlobReader(
        PointerSigner(_secret(settings, "pointers/v1")), await _blob_store(settings, runtime, stack), replays
    )
    if runtime.erasure is not None and isinstance(sessions, MemoryTransportSessions):
        runtime.erasure.add_purger(TransportSessionPurger(sessions))
    runtime.tool_service = ToolService(
        gateway,
        catalog,
        runtime.views,
        builtins=tool_specs(settings),
        max_argument_bytes=settings.max_argument_bytes,
    )
    runtime.verifier = auth.verifier if auth is not None else None
    registration = RegistrationHttp(runtime.tool_service, identities)
    server = LedgerMcp(
        tool_specs(settings),
        gateway,
        runtime.views,
        identities,
        blobs=blobs,
        max_argument_bytes=settings.max_argument_bytes,
        registry=catalog,
        audit=AuditResource(runtime.audit) if runtime.audit is not None else None,
        plans=plan_tools(settings, gateway, runtime.plan_views, identities),
        log_levels=sessions,
        pipelines=PipelineTool(runtime.tool_service, max_argument_bytes=settings.max_argument_bytes),
        rate_guard=_rate_guard(settings, stack),
    ).build()
    install_request_state(server, _secret(settings, "request-state/v1"), ttl=settings.pointer_ttl)
    open_session, close_session = _session_commands(gateway)
    layer = {
        "identities": identities,
        "sessions": sessions,
        "ttl": settings.session_ttl,
        "hub": hub,
        "open_session": open_session,
        "close_session": close_session,
    }
    routes = [
        _health(runtime),
        *registration.routes(),
        *admin_routes(gateway, settings.compliance_topic, identities),
        *opt_out_routes(gateway, identities),
        *bootstrap_ops.api_routes(
            settings, server, runtime.metrics, runtime.bus, runtime.store, runtime.views
        ),
    ]
    return build_http_app(server, host=settings.host, auth=auth, session_layer=layer, routes=routes)


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
        bus=bootstrap_ops.instrument_bus(make_bus(settings), settings, metrics),
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
        relay = await _start_worker(settings, runtime, stack) if worker else None
        if api:
            if runtime.store is None and not settings.store_url.startswith("sqlite"):
                runtime.store = await open_event_store(settings.store_url)
                stack.push_async_callback(runtime.store.close)
            runtime.app = await _build_api(settings, runtime, stack)
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
