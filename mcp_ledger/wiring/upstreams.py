"""Wiring of upstream MCP servers: the connector under the egress policy, the worker's held
sessions and breakers, the calls runner, the upstream-server tools, and the operator's
`serve --upstream NAME=URL` entries registered at start."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.registry.writer import RegistryWriter
from mcp_ledger.consumers.tasks.log import StoredTaskLog
from mcp_ledger.consumers.tools import ToolRunner
from mcp_ledger.consumers.upstreams.auth.assertions import AssertionSigner
from mcp_ledger.consumers.upstreams.auth.exchange import ExchangedTokens
from mcp_ledger.consumers.upstreams.auth.oauth import ClientCredentialsAuth, ClientCredentialsTokens
from mcp_ledger.consumers.upstreams.auth.secrets import UpstreamSecrets
from mcp_ledger.consumers.upstreams.calls import ProgressRelay, UpstreamCalls
from mcp_ledger.consumers.upstreams.catalog_tools import CatalogTools
from mcp_ledger.consumers.upstreams.connection import EgressPolicy, UpstreamConnector
from mcp_ledger.consumers.upstreams.health import Breakers
from mcp_ledger.consumers.upstreams.reads import UpstreamReads
from mcp_ledger.consumers.upstreams.registrar import CatalogRefresher, UpstreamRegistrar
from mcp_ledger.consumers.upstreams.relay.backchannel import BusBackChannel
from mcp_ledger.consumers.upstreams.relay.parking import TaskInputs
from mcp_ledger.consumers.upstreams.sessions import UpstreamSessions
from mcp_ledger.consumers.upstreams.subscriptions.resources import UpstreamSubscriptions
from mcp_ledger.consumers.upstreams.tools import UpstreamTools
from mcp_ledger.domain.upstreams.model import SERVER_NAME_PATTERN
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.runtime import Runtime, secret_key

log = logging.getLogger(__name__)
_MODES = ("forbidden", "optional", "required")


def _stdio(settings: Settings) -> dict[str, tuple[str, ...]]:
    return {name: tuple(argv) for name, argv in settings.upstream_stdio.items() if argv}


ASSERTION_PURPOSE = "upstream-assertions/v1"


def assertion_signer(settings: Settings) -> AssertionSigner:
    """The signer of the subject assertions of token exchanges: its key derived from the
    deployment's secret (every worker alike), its issuer the gateway's public URL."""
    return AssertionSigner(secret_key(settings, ASSERTION_PURPOSE), settings.base_url)


def exchanged_tokens(settings: Settings) -> ExchangedTokens:
    """The worker's one cache of exchanged upstream tokens (register it with the erasure
    barrier's caches)."""
    return ExchangedTokens(_policy(settings), assertion_signer(settings))


def _policy(settings: Settings) -> EgressPolicy:
    return EgressPolicy(
        allowed_hosts=settings.allowed_hosts,
        stdio=_stdio(settings),
        local_tenant=settings.local_tenant,
        client_cert=str(settings.http_client_cert) if settings.http_client_cert else None,
        client_key=str(settings.http_client_key) if settings.http_client_key else None,
        ca_bundle=str(settings.http_ca_bundle) if settings.http_ca_bundle else None,
    )


def upstream_connector(settings: Settings, exchanged: ExchangedTokens | None = None) -> UpstreamConnector:
    policy = _policy(settings)
    tokens = ClientCredentialsTokens(policy)
    exchange = (exchanged if exchanged is not None else exchanged_tokens(settings)).auth
    return UpstreamConnector(
        policy, oauth=lambda target: ClientCredentialsAuth(tokens, target), exchange=exchange
    )


def upstream_calls(
    settings: Settings,
    store: EventStore,
    mapper: EventMapper,
    privacy: PrivacyChoices,
    *,
    progress: ProgressRelay | None = None,
    metrics: LedgerMetrics | None = None,
    connector: UpstreamConnector | None = None,
    backchannel: BusBackChannel | None = None,
    task_log: StoredTaskLog | None = None,
) -> UpstreamCalls:
    sessions = UpstreamSessions(
        (connector or upstream_connector(settings)).open,
        idle_s=settings.upstream_idle_seconds,
        max_sessions=settings.upstream_max_sessions,
    )
    breakers = Breakers(
        threshold=settings.upstream_breaker_failures, cooldown_s=settings.upstream_breaker_cooldown
    )
    secrets = UpstreamSecrets(store, mapper)

    def observe(tenant: str, server: str, outcome: str, seconds: float) -> None:
        if metrics is not None:  # bounded labels: only the operator's upstreams are named
            metrics.upstream_request(
                server if tenant == settings.local_tenant else "tenant", outcome, seconds
            )

    parking = None  # a task's upstream input waits on the task for tasks/update
    if backchannel is not None and task_log is not None:
        parking = TaskInputs(task_log, backchannel, wait_s=settings.task_input_wait_s)
    return UpstreamCalls(
        sessions,
        secrets,
        breakers=breakers,
        privacy=privacy,
        progress=progress,
        observe=observe,
        backchannel=backchannel,
        input_wait_s=settings.upstream_input_wait,
        task_inputs=parking,
    )


def catalog_refresher(
    settings: Settings,
    writer: RegistryWriter,
    calls: UpstreamCalls,
    connector: UpstreamConnector,
    exchanged: ExchangedTokens | None = None,
) -> CatalogRefresher:
    """Upstream list_changed notifications on the held sessions refresh the recorded catalog."""
    refresher = CatalogRefresher(UpstreamRegistrar(writer, upstream_connector(settings, exchanged), calls))
    connector.on_list_changed(refresher)
    return refresher


def upstream_subscriptions(
    catalog: ToolCatalog, calls: UpstreamCalls, connector: UpstreamConnector
) -> UpstreamSubscriptions:
    """Resource subscriptions held on the upstream sessions `connector` opens (attach the
    worker's command handler once it is built)."""
    subscriptions = UpstreamSubscriptions(catalog, calls)
    connector.on_resource_updated(subscriptions.on_updated)
    return subscriptions


def upstream_runners(
    settings: Settings,
    writer: RegistryWriter,
    calls: UpstreamCalls,
    catalog: ToolCatalog,
    exchanged: ExchangedTokens | None = None,
    subscriptions: UpstreamSubscriptions | None = None,
) -> dict[str, ToolRunner]:
    registrar = UpstreamRegistrar(writer, upstream_connector(settings, exchanged), calls)
    return {
        **UpstreamTools(registrar, stdio=_stdio(settings), local_tenant=settings.local_tenant).runners(),
        **UpstreamReads(catalog, calls).runners(),
        **(subscriptions.runners() if subscriptions is not None else {}),
        **CatalogTools(catalog).runners(),
    }


def parse_upstream(entry: str) -> tuple[str, str]:
    """(name, URL) of a NAME=URL operator entry.

    Raises:
        ValueError: not NAME=URL with a valid server name and an http(s) URL.
    """
    name, sep, url = entry.partition("=")
    if not sep or not re.match(SERVER_NAME_PATTERN, name) or urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError(
            f"--upstream {entry!r}: expected NAME=URL (e.g. everything=http://127.0.0.1:3001/mcp)"
        )
    return name, url


def parse_task_support(entries: list[str]) -> dict[str, dict[str, str]]:
    """`{server: {tool: mode}}` of NAME:TOOL=MODE operator entries (`serve --task-support`).

    Raises:
        ValueError: not NAME:TOOL=MODE with a valid server name and mode.
    """
    found: dict[str, dict[str, str]] = {}
    for entry in entries:
        server, _, rest = entry.partition(":")
        tool, sep, mode = rest.partition("=")
        if not sep or not tool or not re.match(SERVER_NAME_PATTERN, server) or mode not in _MODES:
            raise ValueError(f"--task-support {entry!r}: expected NAME:TOOL=forbidden|optional|required")
        found.setdefault(server, {})[tool] = mode
    return found


def with_upstream_hosts(settings: Settings) -> Settings:
    """The settings with each operator upstream's exact host:port on the egress allowlist
    (the operator named them; nothing wider is allowed).

    Raises:
        ValueError: an entry is not NAME=URL.
    """
    hosts = [urlsplit(parse_upstream(entry)[1]) for entry in settings.upstreams]
    extra = [f"{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}" for p in hosts]
    if not extra:
        return settings
    allowed = ",".join(filter(None, [settings.registry_allowed_hosts, *extra]))
    return settings.model_copy(update={"registry_allowed_hosts": allowed})


async def front_upstreams(settings: Settings, runtime: Runtime, *, attempts: int = 20) -> list[str]:
    """Register the operator's upstreams (NAME=URL entries and LEDGER_UPSTREAM_STDIO servers)
    for the local tenant, as its admin, each retried for a while in case it is still
    starting; returns one line per server."""
    if runtime.tool_service is None or not (settings.upstreams or settings.upstream_stdio):
        return []
    operator = Identity(settings.local_tenant, settings.local_subject, ("admin",))
    entries: list[tuple[str, dict[str, Any]]] = [
        (name, {"name": name, "url": url}) for name, url in map(parse_upstream, settings.upstreams)
    ]
    entries += [(name, {"name": name, "stdio": name}) for name in _stdio(settings)]
    for name, arguments in entries:
        if name in settings.upstream_task_support:
            arguments["task_support"] = dict(settings.upstream_task_support[name])
    lines = []
    for name, arguments in entries:
        where = arguments.get("url") or f"stdio:{name}"
        for attempt in range(attempts):
            outcome = await runtime.tool_service.call(operator, None, "register_server", dict(arguments))
            if outcome.kind == "ok" or "unreachable" not in outcome.title or attempt == attempts - 1:
                break
            await asyncio.sleep(0.5)
        if outcome.kind == "ok":
            lines.append(f"upstream {name}: {len(outcome.data.get('exposed', []))} tools from {where}")
        else:
            problems = "; ".join(outcome.problems)
            log.error("upstream %s (%s) was not registered: %s %s", name, where, outcome.title, problems)
            lines.append(f"upstream {name}: NOT registered: {outcome.title}: {problems}")
    return lines
