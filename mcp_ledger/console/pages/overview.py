"""The Overview page: the tenant's traffic from its recorded events, the gateway's lags from
its metrics, recent denials and upstream health.

Calls per second, the error rate and the latency percentiles are measured on the viewer's
tenant's own events of the last five minutes (a call's latency: from the moment the API
issued its command, ToolCalled.issued_at, to its outcome's recorded time), so no tenant sees
another's traffic. Consumer, projection and outbox
lag are the gateway's (this process's gauges): operational figures without tenant data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import quantiles
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_ledger.console.access import Viewer
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.pages.filters import latest
from mcp_ledger.console.rendering import Pages
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.observability.metrics import LedgerMetrics

WINDOW = timedelta(minutes=5)
SAMPLE = 1000
OUTCOMES = ("ToolSucceeded", "ToolFailed", "ToolCallDenied")


def traffic(rows: list[dict[str, Any]], window: timedelta) -> dict[str, Any]:
    """Calls/s, error rate and p50/p99 latency (ms) of a window's call events."""
    started: dict[str, datetime] = {}
    latencies: list[float] = []
    outcomes = {"ToolSucceeded": 0, "ToolFailed": 0, "ToolCallDenied": 0}
    for row in rows:
        stamp = datetime.fromisoformat(str(row["recorded_at"]))
        command_id = str(row.get("command_id") or "")
        if row["event_type"] == "ToolCalled":
            issued = (row.get("data") or {}).get("issued_at")
            started[command_id] = datetime.fromtimestamp(issued, UTC) if isinstance(issued, float) else stamp
        elif row["event_type"] in outcomes:
            outcomes[row["event_type"]] += 1
            if command_id in started:
                latencies.append((stamp - started[command_id]).total_seconds() * 1000)
    total = sum(outcomes.values())
    cuts = quantiles(latencies, n=100, method="inclusive") if len(latencies) >= 2 else latencies * 99
    return {
        "calls": total,
        "per_second": total / window.total_seconds(),
        "error_rate": (outcomes["ToolFailed"] / total) if total else 0.0,
        "denied": outcomes["ToolCallDenied"],
        "p50": cuts[49] if cuts else None,
        "p99": cuts[98] if cuts else None,
        "sampled": len(rows) >= SAMPLE,
    }


def lags(metrics: LedgerMetrics) -> dict[str, Any]:
    """The gateway's lag gauges as this process last sampled them."""
    consumers = [
        {"topic": sample.labels["topic"], "group": sample.labels["group"], "lag": sample.value}
        for family in metrics.registry.collect()
        if family.name == "ledger_consumer_lag_messages"
        for sample in family.samples
    ]
    return {
        "consumers": consumers,
        "projection": metrics.value("ledger_projection_lag_events"),
        "outbox": metrics.value("ledger_outbox_backlog"),
        "store_position": metrics.value("ledger_store_position"),
    }


def overview_routes(pages: Pages, deps: ConsoleDeps) -> list[Route]:
    async def page(request: Request, viewer: Viewer) -> Response:
        tenant, now = viewer.identity.tenant, datetime.now(UTC)
        window = AuditFilters(since=now - WINDOW, event_types=("ToolCalled", *OUTCOMES), limit=SAMPLE)
        denials = AuditFilters(since=now - timedelta(hours=24), event_types=("ToolCallDenied",))
        recent = await latest(deps.audit, tenant, denials, 10)
        upstreams = await deps.upstreams.servers(tenant) if deps.upstreams is not None else None
        return pages.render(
            request,
            "overview.html",
            viewer,
            page="overview",
            traffic=traffic(await deps.audit.search(tenant, window), WINDOW),
            lags=lags(deps.metrics),
            denials=list(reversed(recent)),
            upstreams=upstreams,
        )

    return [Route("/", pages.guard(page), methods=["GET"])]
