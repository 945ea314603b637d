"""Wiring of the tool registry: its views, the tool catalog, the runners of registered tools
(HTTP, SQL) with their policies, and the tools/list cache."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp

from mcp_ledger.consumers.bindings.http_runner import HttpRunnerConfig, HttpToolRunner
from mcp_ledger.consumers.bindings.pointer_inputs import PointerInputs
from mcp_ledger.consumers.bindings.sql_runner import SqlToolRunner
from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.registry.data_source_secrets import DataSourceSecrets
from mcp_ledger.consumers.registry.data_sources import DataSourcePolicy
from mcp_ledger.consumers.registry.registered_tools import RegisteredTools
from mcp_ledger.consumers.registry.tools import RegistryTools
from mcp_ledger.consumers.registry.writer import RegistryWriter
from mcp_ledger.consumers.upstreams.calls import UpstreamCalls
from mcp_ledger.domain.compliance.privacy import privacy_tool_specs
from mcp_ledger.domain.registry.registration import RegistrationPolicy
from mcp_ledger.domain.registry.tools import registry_tool_specs
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog
from mcp_ledger.domain.upstreams.tools import upstream_tool_specs
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.mcp_api.tools.listing_cache import ListingCache
from mcp_ledger.mcp_api.tools.listing_shortcut import ListingScopes, ListingShortcut
from mcp_ledger.producers.outbox import OutboxRelay
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.registry.projector import RegistryProjector
from mcp_ledger.projections.registry.redis import RedisRegistryViewStore
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.runtime import Runtime, publishing

log = logging.getLogger(__name__)


def make_registry_views(settings: Settings) -> RegistryViewStore:
    """The registry view store beside the session views (same backend, same prefix)."""
    if settings.state.startswith("memory"):
        return MemoryRegistryViewStore()
    return RedisRegistryViewStore.from_url(settings.state, prefix=settings.state_prefix)


def tool_specs(settings: Settings) -> dict[str, ToolSpec]:
    """Built-in tools and the registry's own tools."""
    return {
        **builtin_catalog(),
        **registry_tool_specs(settings.registering_role),
        **upstream_tool_specs(settings.registering_role),
        **privacy_tool_specs(),
    }


def registered_tools(
    settings: Settings,
    catalog: ToolCatalog,
    secrets: DataSourceSecrets,
    privacy: PrivacyChoices,
    pointers: PointerInputs,
    upstreams: UpstreamCalls | None = None,
) -> RegisteredTools:
    config = HttpRunnerConfig(
        allowed_hosts=settings.allowed_hosts,
        client_cert=str(settings.http_client_cert) if settings.http_client_cert else None,
        client_key=str(settings.http_client_key) if settings.http_client_key else None,
        ca_bundle=str(settings.http_ca_bundle) if settings.http_ca_bundle else None,
    )
    return RegisteredTools(
        catalog,
        HttpToolRunner(config),
        SqlToolRunner(),
        secrets,
        privacy=privacy,
        pointers=pointers,
        upstreams=upstreams,
    )


def registry_writer(
    settings: Settings,
    store: EventStore,
    projector: RegistryProjector,
    relay: OutboxRelay,
    mapper: EventMapper,
) -> RegistryWriter:
    policy = RegistrationPolicy(allowed_hosts=settings.allowed_hosts)
    return RegistryWriter(store, projector, publishing(relay), policy, tool_specs(settings), mapper=mapper)


def registry_tools(settings: Settings, writer: RegistryWriter) -> RegistryTools:
    sources = DataSourcePolicy(
        allowlist=tuple(d.strip() for d in settings.data_source_allowlist.split(",") if d.strip()),
        sqlite_dir=settings.data_source_sqlite_dir,
    )
    return RegistryTools(writer, settings.allowed_hosts, sources)


def listing_shortcut(runtime: Runtime, scopes: ListingScopes) -> Callable[[ASGIApp], ASGIApp]:
    """tools/list answered from its cache (mcp_api/tools/listing_cache.py), one of the
    subject caches the erasure barrier crosses."""
    cache = ListingCache()
    runtime.caches.register(cache)
    runtime.listings = cache
    seconds = runtime.metrics.request_seconds.labels(method="tools/list", tool="")
    return lambda app: ListingShortcut(app, cache, scopes, observe=seconds.observe)
