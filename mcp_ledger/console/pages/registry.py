"""The Registry page: the tools a tenant (and one of its sessions) sees, each registered
tool's version and the history of registrations, and the upstream servers with pending
approvals of changed tool definitions (from the federation's UpstreamSource when wired), which
an admin approves or rejects by the hash the page showed: the source records the decision as
a command. Pinning's events (changed, approved, rejected) are in the history.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mcp_ledger.console.access import Viewer
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.rendering import BASE, Pages
from mcp_ledger.domain.streams import parse_registry_stream
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.projections.registry.view import RegistryView

SESSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
REGISTRY_EVENTS = (
    "ToolRegistered",
    "ToolUpdated",
    "ToolRemoved",
    "DataSourceConnected",
    "UpstreamToolChanged",
    "UpstreamToolsApproved",
    "UpstreamToolRejected",
)


def history_rows(rows: list[dict[str, Any]], tenant: str) -> list[dict[str, Any]]:
    """Registry events of the tenant, newest first, each with its scope."""
    found = []
    for row in reversed(rows):
        parsed = parse_registry_stream(str(row["stream_id"]))
        if parsed is None or parsed[0] != tenant:
            continue
        data = row.get("data") or {}
        definition = data.get("definition")
        if not isinstance(definition, dict):
            definition = {}
        name = definition.get("name") or data.get("name") or data.get("source") or _upstream_name(data)
        found.append({**row, "scope": parsed[1] or "tenant", "name": name, "version": data.get("version")})
    return found


def _upstream_name(data: dict[str, Any]) -> str:
    """What an upstream event names: the server and its tool with the definition's hash."""
    server = str(data.get("server") or "")
    if "tool" in data:
        return f"{server}/{data['tool']} {str(data.get('definition_hash', ''))[:12]}".strip()
    approved = data.get("approved")
    if isinstance(approved, dict):
        return f"{server}: " + ", ".join(f"{t} {str(h)[:12]}" for t, h in sorted(approved.items()))
    return server


def registry_routes(pages: Pages, deps: ConsoleDeps) -> list[Route]:
    async def page(request: Request, viewer: Viewer) -> Response:
        tenant = viewer.identity.tenant
        session_id = request.query_params.get("session", "").strip()[:128] or None
        if session_id is not None and not SESSION_ID_PATTERN.match(session_id):
            return pages.refuse(request, viewer, 400, "That is not a session id.")
        scopes: list[RegistryView] = []
        for scope in (None, session_id) if session_id else (None,):
            view = await deps.registry.get(tenant, scope)
            if view is not None and view.tenant == tenant:
                scopes.append(view)
        rows = await deps.audit.search(tenant, AuditFilters(event_types=REGISTRY_EVENTS, limit=500))
        upstreams = pending = None
        if deps.upstreams is not None:
            upstreams = await deps.upstreams.servers(tenant)
            pending = await deps.upstreams.pending_approvals(tenant)
        return pages.render(
            request,
            "registry.html",
            viewer,
            page="registry",
            scopes=scopes,
            session_id=session_id or "",
            builtins=sorted(deps.builtins),
            history=history_rows(rows, tenant),
            upstreams=upstreams,
            pending=pending,
            notice=request.query_params.get("notice", "")[:200],
        )

    async def decide(request: Request, viewer: Viewer) -> Response:
        if deps.upstreams is None:
            return pages.refuse(request, viewer, 404, "No upstream servers are federated here.")
        form = await request.form()
        decision = str(form.get("decision", ""))
        tool, digest = str(form.get("tool", ""))[:2048], str(form.get("hash", ""))
        if decision not in {"approve", "reject"}:
            return pages.refuse(request, viewer, 400, "Approve or reject.")
        if not tool or not HASH_PATTERN.match(digest):
            return pages.refuse(request, viewer, 400, "A decision names the definition it saw.")
        approval_id = request.path_params["approval_id"][:256]
        hashes = {tool: digest}
        notice = await deps.upstreams.decide(viewer.identity, approval_id, decision == "approve", hashes)
        return RedirectResponse(f"{BASE}/registry?{urlencode({'notice': notice[:200]})}", status_code=303)

    return [
        Route("/registry", pages.guard(page), methods=["GET"]),
        Route("/registry/approvals/{approval_id}", pages.guard(decide, admin=True), methods=["POST"]),
    ]
