"""Wiring of upstream MCP servers: the connector under the egress policy, the worker's held
sessions and breakers, the calls runner and the upstream-server tools."""

from __future__ import annotations

from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.registry.writer import RegistryWriter
from mcp_ledger.consumers.tools import ToolRunner
from mcp_ledger.consumers.upstreams.calls import ProgressRelay, UpstreamCalls
from mcp_ledger.consumers.upstreams.connection import EgressPolicy, UpstreamConnector
from mcp_ledger.consumers.upstreams.health import Breakers
from mcp_ledger.consumers.upstreams.registrar import UpstreamRegistrar
from mcp_ledger.consumers.upstreams.secrets import UpstreamSecrets
from mcp_ledger.consumers.upstreams.sessions import UpstreamSessions
from mcp_ledger.consumers.upstreams.tools import UpstreamTools
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.settings import Settings


def upstream_connector(settings: Settings) -> UpstreamConnector:
    return UpstreamConnector(
        EgressPolicy(
            allowed_hosts=settings.allowed_hosts,
            client_cert=str(settings.http_client_cert) if settings.http_client_cert else None,
            client_key=str(settings.http_client_key) if settings.http_client_key else None,
            ca_bundle=str(settings.http_ca_bundle) if settings.http_ca_bundle else None,
        )
    )


def upstream_calls(
    settings: Settings,
    store: EventStore,
    mapper: EventMapper,
    privacy: PrivacyChoices,
    *,
    progress: ProgressRelay | None = None,
) -> UpstreamCalls:
    sessions = UpstreamSessions(
        upstream_connector(settings).open,
        idle_s=settings.upstream_idle_seconds,
        max_sessions=settings.upstream_max_sessions,
    )
    breakers = Breakers(
        threshold=settings.upstream_breaker_failures, cooldown_s=settings.upstream_breaker_cooldown
    )
    secrets = UpstreamSecrets(store, mapper)
    return UpstreamCalls(sessions, secrets, breakers=breakers, privacy=privacy, progress=progress)


def upstream_runners(
    settings: Settings, writer: RegistryWriter, calls: UpstreamCalls
) -> dict[str, ToolRunner]:
    return UpstreamTools(UpstreamRegistrar(writer, upstream_connector(settings), calls)).runners()
