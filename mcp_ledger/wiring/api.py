"""Wiring of the MCP API: auth, transport sessions, notification streams, rate limits,
and the HTTP application with every route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from mcp_ledger.consumers.tasks.log import AuditedTaskIndex, stored_task_log
from mcp_ledger.crypto.pointers import PointerSigner
from mcp_ledger.crypto.ports import KeyStoreError
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.limits.admission import RateAdmission
from mcp_ledger.limits.memory import MemoryRateLimiter
from mcp_ledger.limits.policy import LimitFormatError, RatePolicy
from mcp_ledger.limits.ports import RateLimiter
from mcp_ledger.limits.redis import RedisRateLimiter
from mcp_ledger.mcp_api.audit import AuditResource
from mcp_ledger.mcp_api.auth.access_tokens import (
    JwksKeys,
    JwtVerifier,
    KeySource,
    StaticKeys,
    TokenIdentityResolver,
    load_key_file,
)
from mcp_ledger.mcp_api.auth.dev_tokens import dev_public_keys
from mcp_ledger.mcp_api.auth.identity import Identity, IdentityResolver, LocalIdentityResolver
from mcp_ledger.mcp_api.backchannel.replies import ReplyPublisher
from mcp_ledger.mcp_api.blob_reads import BlobReader
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.http_app import AuthSetup, build_http_app, install_request_state
from mcp_ledger.mcp_api.listen import ListenStreams
from mcp_ledger.mcp_api.progress import ProgressHub
from mcp_ledger.mcp_api.rate_limits import RateGuard
from mcp_ledger.mcp_api.routes.admin import admin_routes
from mcp_ledger.mcp_api.routes.opt_outs import opt_out_routes
from mcp_ledger.mcp_api.routes.registration import RegistrationHttp
from mcp_ledger.mcp_api.routes.servers import ServersHttp
from mcp_ledger.mcp_api.server import LedgerMcp
from mcp_ledger.mcp_api.tasks.methods import TaskMethods
from mcp_ledger.mcp_api.tasks.plans import PlanRuns
from mcp_ledger.mcp_api.tasks.service import TaskService
from mcp_ledger.mcp_api.tools.listing_shortcut import ListingScopes
from mcp_ledger.mcp_api.tools.pipelines import PipelineTool
from mcp_ledger.mcp_api.tools.service import ToolService
from mcp_ledger.mcp_api.transport.checks import TransportPolicy
from mcp_ledger.mcp_api.transport.notifications import NotificationHub
from mcp_ledger.mcp_api.transport.session_layer import SessionCloser, SessionOpener, SessionOpenError
from mcp_ledger.mcp_api.transport.sessions import (
    MemoryTransportSessions,
    TransportSessionPurger,
    TransportSessions,
)
from mcp_ledger.mcp_api.transport.sessions_redis import RedisTransportSessions
from mcp_ledger.mcp_api.upstreams import UpstreamSurface
from mcp_ledger.producers.ports import BusError, Message
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.projector import RegistryProjector
from mcp_ledger.projections.registry.watcher import RegistryWatcher
from mcp_ledger.settings import Settings
from mcp_ledger.wiring import ops as ops_wiring
from mcp_ledger.wiring.console import OWN_GATES, console
from mcp_ledger.wiring.plans import plan_tools
from mcp_ledger.wiring.protection import KekProbe, KeyUnits, evict_on_erasure, sql_keys
from mcp_ledger.wiring.registry import listing_shortcut, tool_specs
from mcp_ledger.wiring.runtime import (
    ConfigurationError,
    Runtime,
    blob_store,
    health_route,
    replay_guard,
    secret_key,
)

log = logging.getLogger(__name__)


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
        except (CommandTimeoutError, BusError, KeyStoreError) as error:
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


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """The limiter beside the session views: shared through Redis, or this process's own."""
    if settings.state.startswith("memory"):
        return MemoryRateLimiter(refusal_ttl=settings.rate_refusal_ttl)
    return RedisRateLimiter.from_url(
        settings.state, settings.state_prefix, refusal_ttl=settings.rate_refusal_ttl
    )


def rate_admission(settings: Settings, stack: AsyncExitStack) -> RateAdmission | None:
    """The process's one RateAdmission (None when no limit is set), closed with `stack`.

    Raises:
        ConfigurationError: a LEDGER_RATE_* limit is malformed.
    """
    try:
        policy = RatePolicy.parse(settings.rate_tenant, settings.rate_subject, settings.rate_tenant_overrides)
    except LimitFormatError as error:
        raise ConfigurationError(f"LEDGER_RATE_*: {error}") from error
    if not policy.active:
        return None
    admission = RateAdmission(policy, make_rate_limiter(settings))
    stack.push_async_callback(admission.close)
    return admission


def transport_policy(settings: Settings) -> TransportPolicy:
    """Which Host and Origin values /mcp accepts."""
    return TransportPolicy.for_server(
        settings.host,
        settings.base_url,
        extra_hosts=settings.http_allowed_hosts,
        extra_origins=settings.http_allowed_origins,
    )


def _notify_clients(hub: NotificationHub) -> Callable[[str, str | None], Awaitable[None]]:
    async def tools_changed(tenant: str, session_id: str | None) -> None:
        hub.tools_changed(tenant, session_id)

    return tools_changed


def _task_methods(
    settings: Settings,
    runtime: Runtime,
    gateway: CommandGateway,
    stack: AsyncExitStack,
    replies: ReplyPublisher | None = None,
    sessions: TransportSessions | None = None,
) -> TaskMethods | None:
    """MCP tasks need the event store: their streams live there."""
    if runtime.store is None:
        return None
    service = TaskService(
        stored_task_log(runtime.store, runtime.sealer),
        gateway,
        ttl_ms=settings.task_ttl_ms,
        plans=PlanRuns(runtime.plan_views),
        replies=replies,
    )
    stack.push_async_callback(service.close)
    audit = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)  # tasks/list
    stack.push_async_callback(audit.close)
    return TaskMethods(service, AuditedTaskIndex(audit), sessions)


async def build_api(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> Starlette:
    assert runtime.keys is not None
    gateway = CommandGateway(
        runtime.bus, settings.commands_topic, timeout=settings.call_timeout, sealer=runtime.sealer
    )
    runtime.bus.subscribe(settings.events_topic, gateway.on_event, group=None)
    runtime.bus.subscribe(settings.events_topic, evict_on_erasure(runtime.keys), group=None)
    hub = NotificationHub(
        runtime.store.read_stream if runtime.store is not None else None,
        runtime.sealer.open_wire if runtime.sealer is not None else None,
    )
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
    replies = ReplyPublisher(runtime.bus.publish, settings.reply_topic, runtime.sealer)
    progress = ProgressHub(runtime.sealer, replies)
    upstreams = UpstreamSurface(catalog, gateway, progress)
    runtime.bus.subscribe(settings.progress_topic, progress.on_message, group=None)
    auth, identities = _auth(settings)
    replays = runtime.replays
    if replays is None:  # an API without a worker in this process
        replays = replay_guard(settings)
        stack.push_async_callback(replays.close)
    sessions = _transport_sessions(settings)
    stack.push_async_callback(sessions.close)
    blobs = BlobReader(
        PointerSigner(secret_key(settings, "pointers/v1")),
        await blob_store(settings, runtime, stack),
        replays,
    )
    if runtime.erasure is not None and isinstance(sessions, MemoryTransportSessions):
        runtime.erasure.add_purger(TransportSessionPurger(sessions))
    rate_guard = RateGuard(runtime.rates) if runtime.rates is not None else None
    runtime.tool_service = ToolService(
        gateway,
        catalog,
        runtime.views,
        builtins=tool_specs(settings),
        max_argument_bytes=settings.max_argument_bytes,
        rate_guard=rate_guard,
    )
    runtime.verifier = auth.verifier if auth is not None else None
    registration = RegistrationHttp(runtime.tool_service, identities)
    tasks = _task_methods(settings, runtime, gateway, stack, replies, sessions)
    ledger = LedgerMcp(
        tool_specs(settings),
        gateway,
        runtime.views,
        identities,
        blobs=blobs,
        max_argument_bytes=settings.max_argument_bytes,
        registry=catalog,
        audit=AuditResource(runtime.audit) if runtime.audit is not None else None,
        plans=plan_tools(settings, gateway, runtime.plan_views, identities, catalog),
        log_levels=sessions,
        pipelines=PipelineTool(runtime.tool_service, max_argument_bytes=settings.max_argument_bytes),
        rate_guard=rate_guard,
        listens=ListenStreams(hub, runtime.views, tasks=tasks, upstreams=upstreams),
        progress=progress,
        upstreams=upstreams,
        tasks=tasks,
    )
    server = ledger.build()
    install_request_state(
        server, secret_key(settings, "request-state/v1"), ttl=settings.pointer_ttl, identities=identities
    )
    open_session, close_session = _session_commands(gateway)
    layer = {
        "identities": identities,
        "sessions": sessions,
        "ttl": settings.session_ttl,
        "hub": hub,
        "open_session": open_session,
        "close_session": close_session,
        "rate_guard": rate_guard,
        "find_tool": ledger.find_for,
        "answer": replies,
        "task_status": tasks.legacy.status if tasks is not None else None,
    }
    routes: list[BaseRoute] = [
        health_route(runtime),
        *registration.routes(),
        *ServersHttp(runtime.tool_service, identities).routes(),
        *admin_routes(gateway, settings.compliance_topic, identities),
        *opt_out_routes(gateway, identities, rate_guard),
        *ops_wiring.api_routes(
            settings,
            server,
            runtime.metrics,
            runtime.bus,
            runtime.store,
            runtime.views,
            keys=KekProbe(sql_keys(runtime.keys)),
            details={"upstreams": lambda: _upstream_counts(runtime)},
        ),
    ]
    console_app = console(settings, runtime, gateway, auth.verifier if auth is not None else None, stack)
    if console_app is not None:
        routes.append(console_app)
    app = build_http_app(
        server,
        host=settings.host,
        auth=auth,
        session_layer=layer,
        routes=routes,
        transport=transport_policy(settings),
        own_gates=OWN_GATES,
        wrap_json=listing_shortcut(runtime, ListingScopes(identities, runtime.views, catalog)),
    )
    app.add_middleware(KeyUnits, keys=runtime.keys)
    return app


def _upstream_counts(runtime: Runtime) -> dict[str, int] | None:
    """This process's upstream breaker counts for /readyz, once it has met an upstream."""
    counts = runtime.upstream_health() if runtime.upstream_health is not None else None
    return counts if counts and counts["tracked"] else None
