"""Wiring shared by the worker and the API halves: the Runtime of a process, secrets,
the blob store, the replay guard, and the adapters between the bus and handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.blobs.memory import MemoryReplayGuard
from mcp_ledger.blobs.ports import BlobStore, ReplayGuard
from mcp_ledger.blobs.redis import RedisReplayGuard
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.consumers.command_handler import AppendedCallback
from mcp_ledger.consumers.compliance.barrier import ErasureBarrier, SubjectCaches
from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.secret import derive_key, master_secret
from mcp_ledger.eventstore.ports import EventStore, StoredEvent
from mcp_ledger.limits.admission import RateAdmission
from mcp_ledger.mcp_api.auth.access_tokens import (
    JwtVerifier,
)
from mcp_ledger.mcp_api.tools.listing_cache import ListingCache
from mcp_ledger.mcp_api.tools.service import ToolService
from mcp_ledger.mcp_api.transport.notifications import NotificationHub
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.producers.ports import BusError, Handler, Message, MessageBus
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.registry.watcher import ToolsChanged
from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.compliance import BlobSettingsError, open_blob_store
from mcp_ledger.wiring.plans import PlanWorker
from mcp_ledger.wiring.protection import SqlAuditReader

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
    caches: SubjectCaches = field(default_factory=SubjectCaches)
    """Every cache of subject data in this process: the erasure barrier drops subjects from them."""
    barrier: ErasureBarrier | None = None
    app: Starlette | None = None
    hub: NotificationHub | None = None
    plans: PlanWorker | None = None
    metrics: LedgerMetrics = field(default_factory=LedgerMetrics)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    upstream_health: Callable[[], dict[str, int]] | None = None
    """Counts of this worker's upstream breakers (for /readyz), when it runs a worker."""
    tool_service: ToolService | None = None
    """MCPToolService for other transports (gRPC); its HTTP mapping is already in `app`."""
    verifier: JwtVerifier | None = None
    replays: ReplayGuard | None = None
    """One-time pointers read: shared by resources/read and tools' pointer arguments."""
    tools_changed: list[ToolsChanged] = field(default_factory=list)
    """Called with (tenant, session id or None for all its sessions) when a tool set changed."""
    metrics_port: int | None = None
    """Where this process serves /metrics (LEDGER_METRICS_PORT; None: nowhere)."""
    rates: RateAdmission | None = None
    console: ConsoleDeps | None = None
    listings: ListingCache | None = None
    """The API's tools/list answers (mcp_api/tools/listing_cache.py)."""
    """What the web console reads and sends through; set `console.upstreams` to list upstream
    servers and their pending approvals there."""
    """Charges executions to callers (None: no limits); one per process, shared by API and worker."""

    async def notify_tools_changed(self, tenant: str, session_id: str | None) -> None:
        for listener in self.tools_changed:
            try:
                await listener(tenant, session_id)
            except Exception:  # boundary: one listener's failure must not starve the others
                log.exception("tools-changed listener failed")


def publishing(relay: OutboxRelay) -> AppendedCallback:
    async def on_appended(events: Sequence[StoredEvent]) -> None:
        try:
            await relay.publish(events)
        except BusError:
            # The events are stored and still in the outbox: the sweep publishes them.
            log.warning("fast-path publish failed; %d events left to the outbox sweep", len(events))

    return on_appended


def payload_handler(handle: Callable[[bytes], Awaitable[None]]) -> Handler:
    async def on_message(message: Message) -> None:
        await handle(message.value)

    return on_message


def health_route(runtime: Runtime) -> Route:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "embedded": runtime.settings.embedded})

    return Route("/healthz", healthz)


def secret_key(settings: Settings, purpose: str) -> bytes:
    return derive_key(master_secret(settings.secret_key, settings.data_dir), purpose)


async def blob_store(settings: Settings, runtime: Runtime, stack: AsyncExitStack) -> BlobStore:
    assert runtime.keys is not None
    try:
        return open_blob_store(settings, runtime.keys, stack)
    except BlobSettingsError as error:
        raise ConfigurationError(str(error)) from error


def replay_guard(settings: Settings) -> ReplayGuard:
    if settings.state.startswith("memory"):
        return MemoryReplayGuard()
    return RedisReplayGuard.from_url(settings.state, settings.state_prefix)
