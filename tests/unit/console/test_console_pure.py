"""The console's pure parts: the DAG layout, the CSV export, the traffic figures and the
filter form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.datastructures import QueryParams
from starlette.requests import Request

from mcp_ledger.console.access import secure_cookies
from mcp_ledger.console.dag import BOX_WIDTH, layout
from mcp_ledger.console.pages.audit import to_csv
from mcp_ledger.console.pages.filters import FilterError, latest, parse_form
from mcp_ledger.console.pages.overview import traffic
from mcp_ledger.console.security import csrf_token, csrf_valid
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.projections.plans.view import TaskView


def test_every_dag_edge_points_right_and_boxes_are_named_by_position_not_by_id() -> None:
    tasks = {
        "<script>": TaskView(tool_name="echo"),
        "b": TaskView(tool_name="echo", dependencies=("<script>",)),
        "c": TaskView(tool_name="echo", dependencies=("<script>", "b")),
        "d": TaskView(tool_name="echo"),
    }
    drawing = layout(tasks)
    columns = {box.task_id: box.x for box in drawing.boxes}
    assert [box.dom_id for box in drawing.boxes] == ["task-0", "task-1", "task-2", "task-3"]
    assert columns["<script>"] == columns["d"] < columns["b"] < columns["c"]
    assert len(drawing.edges) == 3
    assert all(edge.x2 > edge.x1 for edge in drawing.edges)
    assert drawing.width >= max(box.x for box in drawing.boxes) + BOX_WIDTH


def test_a_dependency_cycle_or_an_unknown_dependency_still_lays_out() -> None:
    tasks = {
        "a": TaskView(tool_name="x", dependencies=("b",)),
        "b": TaskView(tool_name="x", dependencies=("a", "z")),
    }
    assert len(layout(tasks).boxes) == 2


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted() -> None:
    rows: list[dict[str, Any]] = [
        {"position": 1, "subject": '=HYPERLINK("http://x")', "tool_name": "+1", "stream_id": "@a"}
    ]
    text = to_csv(rows)
    assert "'=HYPERLINK" in text
    assert ",'+1," in text
    assert "'@a" in text


def _row(kind: str, command: str, at: datetime, **data: Any) -> dict[str, Any]:
    return {"event_type": kind, "command_id": command, "recorded_at": at.isoformat(), "data": data}


def test_traffic_counts_outcomes_and_measures_latency_from_the_issued_command() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    a_done, b_done = t0 + timedelta(milliseconds=40), t0 + timedelta(milliseconds=100)
    # A worker appends ToolCalled and the outcome together: the issue time is the start.
    rows = [
        _row("ToolCalled", "a", a_done, issued_at=t0.timestamp()),
        _row("ToolSucceeded", "a", a_done),
        _row("ToolCalled", "b", b_done, issued_at=t0.timestamp()),
        _row("ToolFailed", "b", b_done),
        _row("ToolCallDenied", "c", t0),
    ]
    figures = traffic(rows, timedelta(seconds=10))
    assert figures["calls"] == 3
    assert figures["per_second"] == pytest.approx(0.3)
    assert figures["error_rate"] == pytest.approx(1 / 3)
    assert figures["denied"] == 1
    assert figures["p50"] == pytest.approx(70.0)
    assert 99.0 < figures["p99"] <= 100.0


def test_the_filter_form_refuses_malformed_times_outcomes_and_positions() -> None:
    form = parse_form(QueryParams("subject=bob&outcome=denied&since=2026-01-01T10:00&after=5"))
    assert form.filters.subject == "bob"
    assert form.filters.event_types == ("ToolCallDenied",)
    assert form.filters.after_position == 5
    assert form.filters.since == datetime(2026, 1, 1, 10, tzinfo=UTC)
    for bad in ("since=yesterday", "outcome=everything", "after=-1"):
        with pytest.raises(FilterError):
            parse_form(QueryParams(bad))


def test_a_csrf_token_is_bound_to_its_session_and_key() -> None:
    token = csrf_token(b"k" * 32, "session-a")
    assert csrf_valid(b"k" * 32, "session-a", token)
    assert not csrf_valid(b"k" * 32, "session-b", token)
    assert not csrf_valid(b"j" * 32, "session-a", token)
    assert not csrf_valid(b"k" * 32, None, token)
    assert not csrf_valid(b"k" * 32, "session-a", "")


def _request(url: str) -> Request:
    parts = httpx.URL(url)
    scope = {
        "type": "http",
        "scheme": parts.scheme,
        "server": (parts.host, parts.port or (443 if parts.scheme == "https" else 80)),
        "path": parts.path,
        "headers": [(b"host", parts.netloc)],
        "query_string": b"",
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("http://127.0.0.1:8000/console/", False),
        ("http://localhost:8000/console/", False),
        ("https://127.0.0.1:8443/console/", True),
        ("http://ledger.example/console/", True),
        ("https://ledger.example/console/", True),
    ],
)
def test_cookies_are_secure_everywhere_but_plain_http_to_loopback(url: str, secure: bool) -> None:
    assert secure_cookies(_request(url)) is secure


class ListedAudit:
    """An AuditReader over a list of rows (the reader's contract: oldest first, `limit` rows
    after `after_position`)."""

    def __init__(self, positions: range) -> None:
        self.rows: list[dict[str, Any]] = [{"position": p, "tenant": "acme"} for p in positions]
        self.pages = 0

    async def search(self, tenant: str, filters: AuditFilters) -> list[dict[str, Any]]:
        self.pages += 1
        after = [
            row for row in self.rows if row["tenant"] == tenant and row["position"] > filters.after_position
        ]
        return after[: filters.limit]

    async def verify(self, tenant: str) -> dict[str, Any]:
        return {}


async def test_the_latest_events_are_found_by_paging_forward_within_a_bound() -> None:
    audit = ListedAudit(range(1, 2501))
    newest = await latest(audit, "acme", AuditFilters(), 3)
    assert [row["position"] for row in newest] == [2498, 2499, 2500]
    assert audit.pages == 3
    assert await latest(audit, "globex", AuditFilters(), 3) == []
    straddling = await latest(ListedAudit(range(1, 2002)), "acme", AuditFilters(), 3)
    assert [row["position"] for row in straddling] == [1999, 2000, 2001]  # across a page boundary
    huge = ListedAudit(range(1, 30_001))
    bounded = await latest(huge, "acme", AuditFilters(), 1)
    assert huge.pages == 20
    assert bounded[0]["position"] == 20_000
