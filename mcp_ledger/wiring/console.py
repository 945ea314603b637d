"""Wiring of the web console: its readers over the store, its sign-in, and its mount.

Picks the adapters the console reads through (the export, opt-out and retention code the
CLI uses, over this process's event store and key store), the verifier MCP requests are
checked with, and the PKCE client when an authorization server is configured.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from starlette.routing import Mount

from mcp_ledger.console.access import ConsoleAccess
from mcp_ledger.console.app import PREFIX, console_mount
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.oauth import OAuthClient
from mcp_ledger.consumers.compliance.export import export_subject
from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.compliance.retention import RetentionPolicy, due_subjects
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.eventstore.activity_sql import SqlSubjectActivity
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.mcp_api.auth.access_tokens import JwtVerifier
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.mcp_api.tools.service import ToolService
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.registry import tool_specs
from mcp_ledger.wiring.runtime import Runtime, secret_key

OWN_GATES = (PREFIX,)
"""Paths whose app authenticates every request itself (the API's gate lets them through)."""


class StoreReads:
    """The console's ConsoleReads over the event store and the key store."""

    def __init__(
        self, settings: Settings, store: EventStore, mapper: EventMapper, stack: AsyncExitStack
    ) -> None:
        engine = create_store_engine(settings.store_url)
        stack.push_async_callback(engine.dispose)
        self._audit = SqlAuditLog(engine)
        self._activity = SqlSubjectActivity(engine)
        self._store = store
        self._mapper = mapper
        self._policy = RetentionPolicy(settings.subject_retention_days)

    async def export(self, tenant: str, subject: str) -> dict[str, Any]:
        return await export_subject(self._audit, self._store, self._mapper, tenant, subject)

    async def opted_out(self, tenant: str, subject: str) -> bool:
        return await PrivacyChoices(self._store).opted_out(tenant, subject)

    async def retention_due(self, tenant: str) -> list[dict[str, Any]]:
        due = await due_subjects(self._activity, self._policy, datetime.now(UTC), tenant=tenant)
        return [
            {
                "subject": entry.activity.subject,
                "last_active": entry.activity.last_active.isoformat(),
                "retention_days": entry.retention_days,
            }
            for entry in due
        ]


class RegistryUpstreams:
    """The console's UpstreamSource over the registry views (federation's upstream entries)
    and the same `approve_server` / `reject_server` commands an MCP admin or `servers
    approve|reject` sends, naming the hash the page showed: a definition that changed since
    is refused by the worker, naming the tool.

    An approval is named by its server and decides one tool's pending definition.
    Tenant-wide upstreams only; the id is resolved within the deciding admin's tenant, so
    another tenant's server cannot be named."""

    def __init__(self, views: RegistryViewStore, service: ToolService) -> None:
        self._views = views
        self._service = service

    async def servers(self, tenant: str) -> list[dict[str, Any]]:
        view = await self._views.get(tenant, None)
        if view is None:
            return []
        return [
            {
                "name": name,
                "url": upstream.server.url or "stdio (operator configuration)",
                # Breakers live in each worker: the API knows only whether discovery succeeded.
                "health": "discovered" if upstream.protocol_version else "not discovered",
                "pinned": "pinned" if upstream.server.pinning else "",
                "tools": len(upstream.tools),
            }
            for name, upstream in sorted(view.upstreams.items())
        ]

    async def pending_approvals(self, tenant: str) -> list[dict[str, Any]]:
        view = await self._views.get(tenant, None)
        if view is None:
            return []
        return [
            {
                "id": name,
                "server": name,
                "tool": tool,
                "hash": digest,
                "change": f"new definition sha256 {digest}",
            }
            for name, upstream in sorted(view.upstreams.items())
            for tool, digest in sorted(upstream.pending.items())
        ]

    async def decide(
        self, identity: Identity, approval_id: str, approve: bool, hashes: dict[str, str]
    ) -> str:
        tool = "approve_server" if approve else "reject_server"
        arguments = {"name": approval_id, "hashes": hashes}
        outcome = await self._service.call(identity, None, tool, arguments)
        what = ", ".join(sorted(hashes))
        if outcome.kind != "ok":
            verdict = "Not approved" if approve else "Not rejected"
            return f"{verdict}: {outcome.title} {' '.join(outcome.problems)}".strip()
        if approve:
            return f"Approved: {approval_id}'s {what} is exposed now as shown."
        return (
            f"Rejected and recorded: {approval_id}'s {what} stays unexposed; the approved definition is kept."
        )


def _oauth(settings: Settings, key: bytes) -> OAuthClient | None:
    if not settings.authorization_servers or settings.no_auth:
        return None
    return OAuthClient(
        server=settings.authorization_servers[0],
        client_id=settings.console_client_id,
        resource=settings.audience,
        key=key,
        scope=settings.console_scope,
    )


def console(
    settings: Settings,
    runtime: Runtime,
    gateway: CommandGateway,
    verifier: JwtVerifier | None,
    stack: AsyncExitStack,
) -> Mount | None:
    """The console mount, None when this process cannot serve it (no store, no audit log)."""
    if runtime.store is None or runtime.audit is None:
        return None
    key = secret_key(settings, "console/v1")
    local = Identity(settings.local_tenant, settings.local_subject, ("admin",)) if settings.no_auth else None
    access = ConsoleAccess(
        verifier, key=key, local=local, tenant_claim=settings.tenant_claim, roles_claim=settings.roles_claim
    )
    deps = ConsoleDeps(
        gateway=gateway,
        compliance_topic=settings.compliance_topic,
        audit=runtime.audit,
        sessions=runtime.views,
        plans=runtime.plan_views,
        registry=runtime.registry_views,
        builtins=tool_specs(settings),
        reads=StoreReads(settings, runtime.store, EventMapper(runtime.sealer), stack),
        metrics=runtime.metrics,
    )
    if runtime.tool_service is not None:
        deps.upstreams = RegistryUpstreams(runtime.registry_views, runtime.tool_service)
    runtime.bus.subscribe(settings.events_topic, deps.changes.on_event, group=None)
    runtime.console = deps
    return console_mount(deps, access, oauth=_oauth(settings, key), public_url=settings.public_url)
