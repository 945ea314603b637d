"""The Sessions and subjects page: one subject's sessions as the ledger holds them (the
session views) and their calls (the audit log), within the viewer's tenant.

Session notes are the subject's data: the page shows how many there are, and their keys and
values only to the subject themselves.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_ledger.console.access import Viewer
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.rendering import Pages
from mcp_ledger.domain.streams import parse_session_stream
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.projections.sessions.view import SessionView

CALL_EVENTS = ("ToolSucceeded", "ToolFailed", "ToolCallDenied")


async def sessions_of(deps: ConsoleDeps, tenant: str, subject: str) -> list[SessionView]:
    """The subject's session views (only those the tenant's store holds for that subject)."""
    found = []
    for session_id in await deps.sessions.sessions_of(tenant, subject):
        view = await deps.sessions.get(tenant, session_id)
        if view is not None and view.tenant == tenant and view.subject == subject:
            found.append(view)
    return sorted(found, key=lambda view: view.opened_at, reverse=True)


def calls_by_session(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The subject's call outcomes grouped by session id ("" for calls outside a session)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        parsed = parse_session_stream(str(row["stream_id"]))
        grouped.setdefault(parsed[1] if parsed else "", []).append(row)
    return grouped


def subjects_routes(pages: Pages, deps: ConsoleDeps) -> list[Route]:
    async def subject_page(request: Request, viewer: Viewer) -> Response:
        subject = request.query_params.get("subject", "").strip()[:256]
        tenant = viewer.identity.tenant
        sessions: list[SessionView] = []
        calls: dict[str, list[dict[str, Any]]] = {}
        if subject:
            sessions = await sessions_of(deps, tenant, subject)
            rows = await deps.audit.search(
                tenant, AuditFilters(subject=subject, event_types=CALL_EVENTS, limit=500)
            )
            calls = calls_by_session(rows)
        return pages.render(
            request,
            "subjects.html",
            viewer,
            page="subjects",
            subject=subject,
            sessions=sessions,
            calls=calls,
            own=subject == viewer.identity.subject,
        )

    return [Route("/subjects", pages.guard(subject_page), methods=["GET"])]
