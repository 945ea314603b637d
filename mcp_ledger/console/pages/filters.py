"""The audit filters a console form names, parsed and bounded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from mcp_ledger.mcp_api.audit import AuditFilters, AuditReader

OUTCOMES = {
    "succeeded": ("ToolSucceeded",),
    "failed": ("ToolFailed",),
    "denied": ("ToolCallDenied",),
    "calls": ("ToolCalled",),
}
FIELDS = ("subject", "tool", "correlation_id", "since", "until", "outcome")
PAGE_SIZE = 50
EXPORT_LIMIT = 1000


class FilterError(ValueError):
    """A filter is malformed; the message says which."""


def _time(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{name} must be a date and time") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _text(params: QueryParams, name: str) -> str:
    return params.get(name, "").strip()[:256]


@dataclass(frozen=True, slots=True)
class FilterForm:
    """The form's values as typed (for re-showing it) and the query they make."""

    values: dict[str, str]
    filters: AuditFilters

    def query_string(self, **changes: str) -> str:
        values = {k: v for k, v in {**self.values, **changes}.items() if v}
        return urlencode(values)


def parse_form(params: QueryParams, *, limit: int = PAGE_SIZE) -> FilterForm:
    """The filters of an audit form.

    Raises:
        FilterError: a time, the outcome or the page position is malformed.
    """
    values = {name: _text(params, name) for name in FIELDS}
    outcome = values["outcome"]
    if outcome and outcome not in OUTCOMES:
        raise FilterError("outcome must be one of " + ", ".join(OUTCOMES))
    after = params.get("after", "0")
    if not after.isdigit():
        raise FilterError("after must be a position")
    filters = AuditFilters(
        subject=values["subject"] or None,
        tool_name=values["tool"] or None,
        correlation_id=values["correlation_id"] or None,
        since=_time(values["since"], "since"),
        until=_time(values["until"], "until"),
        limit=limit,
        event_types=OUTCOMES[outcome] if outcome else None,
        after_position=int(after),
    )
    return FilterForm(values, filters)


MAX_SCAN_PAGES = 20


async def latest(audit: AuditReader, tenant: str, filters: AuditFilters, keep: int) -> list[dict[str, Any]]:
    """The last `keep` matching events of the tenant, newest last: the reader answers oldest
    first, so this pages forward (at most MAX_SCAN_PAGES pages of EXPORT_LIMIT events)."""
    found: list[dict[str, Any]] = []
    after = filters.after_position
    for _ in range(MAX_SCAN_PAGES):
        page = await audit.search(tenant, replace(filters, limit=EXPORT_LIMIT, after_position=after))
        found = [*found, *page][-keep:]
        if len(page) < EXPORT_LIMIT:
            break
        after = int(page[-1]["position"])
    return found
