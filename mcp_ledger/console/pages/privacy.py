"""The Privacy page: find a subject, their opt-out state, sessions and plans, download their
export, request their erasure and see it complete; the retention dry run.

An erasure is asked for twice: the first form leads to a confirmation that names what will
be destroyed (the subject's keys, so every sealed field of their events, their sessions,
plans and blobs), and only a second form that repeats the subject id sends the EraseSubject
command, on the compliance topic through the same gateway call as POST /admin/erasures.
Exports and erasures are the admin's; auditors see the state.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_ledger.console.access import Viewer
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.pages.subjects import sessions_of
from mcp_ledger.console.rendering import Pages
from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.mcp_api.gateway import CommandTimeoutError
from mcp_ledger.producers.ports import BusError


async def subject_facts(deps: ConsoleDeps, tenant: str, subject: str) -> dict[str, Any]:
    """What the ledger holds of the subject right now, and their recorded erasures."""
    sessions = await sessions_of(deps, tenant, subject)
    plans = await deps.plans.plans_of(tenant, subject)
    events = await deps.audit.search(tenant, AuditFilters(subject=subject, limit=1000))
    erasures = [e for e in events if e["event_type"] == "ErasureCompleted"]
    return {
        "sessions": sessions,
        "plans": plans,
        "events": len([e for e in events if e["event_type"] not in {"ErasureStarted", "ErasureCompleted"}]),
        "erasures": erasures,
        "opted_out": await deps.reads.opted_out(tenant, subject),
    }


def _subject(value: object) -> str:
    return str(value or "").strip()[:256]


def privacy_routes(pages: Pages, deps: ConsoleDeps) -> list[Route]:
    async def page(request: Request, viewer: Viewer) -> Response:
        subject = _subject(request.query_params.get("subject"))
        tenant = viewer.identity.tenant
        facts = await subject_facts(deps, tenant, subject) if subject else None
        due = await deps.reads.retention_due(tenant)
        return pages.render(
            request, "privacy.html", viewer, page="privacy", subject=subject, facts=facts, due=due
        )

    async def export(request: Request, viewer: Viewer) -> Response:
        subject = _subject(request.query_params.get("subject"))
        if not subject:
            return pages.refuse(request, viewer, 400, "Name the subject to export.")
        bundle = await deps.reads.export(viewer.identity.tenant, subject)
        body = json.dumps(bundle, ensure_ascii=False, indent=2)
        disposition = 'attachment; filename="subject-export.json"'
        return Response(body, media_type="application/json", headers={"content-disposition": disposition})

    async def confirm(request: Request, viewer: Viewer) -> Response:
        subject = _subject((await request.form()).get("subject"))
        if not subject:
            return pages.refuse(request, viewer, 400, "Name the subject to erase.")
        facts = await subject_facts(deps, viewer.identity.tenant, subject)
        return pages.render(
            request, "erase_confirm.html", viewer, page="privacy", subject=subject, facts=facts
        )

    async def erase(request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        subject, repeated = _subject(form.get("subject")), _subject(form.get("confirm"))
        if not subject or repeated != subject:
            return pages.refuse(request, viewer, 400, "The subject id typed to confirm does not match.")
        identity = viewer.identity
        command = EraseSubject(tenant=identity.tenant, subject=subject, requested_by=identity.subject)
        record: dict[str, Any] | None = None
        try:
            event = await deps.gateway.erase(deps.compliance_topic, command)
        except CommandTimeoutError:
            status = "accepted"
        except BusError:
            return pages.refuse(request, viewer, 503, "The compliance bus is unavailable; try again.")
        else:
            status = "completed"
            data = event.get("data")
            record = data if isinstance(data, dict) else None
        return pages.render(
            request,
            "erased.html",
            viewer,
            page="privacy",
            subject=subject,
            outcome=status,
            erasure_id=command.command_id,
            record=record,
        )

    return [
        Route("/privacy", pages.guard(page), methods=["GET"]),
        Route("/privacy/export", pages.guard(export, admin=True), methods=["GET"]),
        Route("/privacy/erase/confirm", pages.guard(confirm, admin=True), methods=["POST"]),
        Route("/privacy/erase", pages.guard(erase, admin=True), methods=["POST"]),
    ]
