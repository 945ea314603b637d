"""The audit filters a console form names, parsed and bounded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from mcp_ledger.mcp_api.audit import AuditFilters

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
