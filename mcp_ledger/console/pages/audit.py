"""The Audit page: the tenant's events filtered and paged, one call's timeline, the hash
chain's verification, and the export of a result set as JSON or CSV.

Every read goes through the AuditReader with the viewer's own tenant: no filter can name
another tenant. Personal fields stay "[sealed]" as in the audit resource. CSV cells that a
spreadsheet would run as a formula (=, +, -, @, tab, CR) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_ledger.console.access import Viewer
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.pages.filters import EXPORT_LIMIT, PAGE_SIZE, FilterError, parse_form
from mcp_ledger.console.rendering import Pages
from mcp_ledger.mcp_api.audit import AuditFilters

CSV_COLUMNS = (
    "position",
    "recorded_at",
    "subject",
    "event_type",
    "tool_name",
    "correlation_id",
    "command_id",
    "stream_id",
    "trace_id",
)
TERMINAL = {"ToolSucceeded": "succeeded", "ToolFailed": "failed", "ToolCallDenied": "denied"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def outcome_of(events: list[dict[str, Any]]) -> str:
    """How a call ended, from its events (running while none is terminal)."""
    for event in reversed(events):
        if event["event_type"] in TERMINAL:
            return TERMINAL[event["event_type"]]
    return "running"


def audit_routes(pages: Pages, deps: ConsoleDeps) -> list[Route]:
    async def search(request: Request, viewer: Viewer) -> Response:
        try:
            form = parse_form(request.query_params, limit=PAGE_SIZE + 1)
        except FilterError as error:
            return pages.render(
                request,
                "audit.html",
                viewer,
                status=400,
                page="audit",
                error=str(error),
                form=None,
                rows=[],
                more=False,
            )
        rows = await deps.audit.search(viewer.identity.tenant, form.filters)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        next_query = form.query_string(after=str(rows[-1]["position"])) if more else ""
        return pages.render(
            request,
            "audit.html",
            viewer,
            page="audit",
            form=form,
            rows=rows,
            more=more,
            next_query=next_query,
            export_query=form.query_string(),
            error="",
        )

    async def export(request: Request, viewer: Viewer) -> Response:
        try:
            form = parse_form(request.query_params, limit=EXPORT_LIMIT)
        except FilterError as error:
            return pages.refuse(request, viewer, 400, str(error))
        rows = await deps.audit.search(viewer.identity.tenant, form.filters)
        kind = request.query_params.get("format", "json")
        name = f"audit-{viewer.identity.tenant}"
        if kind == "csv":
            return Response(
                to_csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.csv"'},
            )
        body = json.dumps({"tenant": viewer.identity.tenant, "events": rows}, ensure_ascii=False, indent=2)
        return Response(
            body,
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{name}.json"'},
        )

    async def timeline(request: Request, viewer: Viewer) -> Response:
        correlation_id = request.path_params["correlation_id"][:256]
        filters = AuditFilters(correlation_id=correlation_id, limit=EXPORT_LIMIT)
        events = await deps.audit.search(viewer.identity.tenant, filters)
        if not events:
            return pages.refuse(request, viewer, 404, "No call with this correlation id in your tenant.")
        traces = sorted({e["trace_id"] for e in events if e.get("trace_id")})
        return pages.render(
            request,
            "timeline.html",
            viewer,
            page="audit",
            correlation_id=correlation_id,
            events=events,
            outcome=outcome_of(events),
            traces=traces,
            first=events[0],
        )

    async def verify(request: Request, viewer: Viewer) -> Response:
        report = await deps.audit.verify(viewer.identity.tenant)
        return pages.render(request, "verify.html", viewer, page="audit", report=report)

    return [
        Route("/audit", pages.guard(search), methods=["GET"]),
        Route("/audit/export", pages.guard(export), methods=["GET"]),
        Route("/audit/verify", pages.guard(verify), methods=["GET"]),
        Route("/audit/calls/{correlation_id}", pages.guard(timeline), methods=["GET"]),
    ]
