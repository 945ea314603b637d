"""The audit log as an MCP resource for auditors: ledger://audit?subject=…&tool=…

Owns the resource's URI and template, who may read it (the "auditor" or "admin" role; always
within the caller's own tenant) and the answer's shape. Filters: subject, tool, correlation_id,
since and until (ISO 8601), limit. Personal fields appear as "[sealed]": auditors see who did
what and when, never the content. `ledger://audit/verify` reports the hash chain's state as
far as the caller's tenant's events go: every figure an auditor sees is their tenant's.
Does not query the store itself: an AuditReader is injected (the API never imports it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_ledger.mcp_api.auth.identity import Identity

AUDIT_URI = "ledger://audit"
VERIFY_URI = "ledger://audit/verify"
AUDITOR_ROLES = frozenset({"auditor", "admin"})
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditFilters:
    subject: str | None = None
    tool_name: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    event_types: tuple[str, ...] | None = None
    after_position: int = 0


class AuditReader(Protocol):
    async def search(self, tenant: str, filters: AuditFilters) -> list[dict[str, Any]]:
        """Matching events of the tenant in global order, personal fields sealed."""
        ...

    async def verify(self, tenant: str) -> dict[str, Any]:
        """The hash chain's state for the tenant's events: how many were checked and the first
        of them that is broken or unverifiable, if any; nothing about other tenants."""
        ...


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _time(params: dict[str, list[str]], name: str) -> datetime | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError as error:
        raise MCPError(types.INVALID_PARAMS, f"{name} must be an ISO 8601 time") from error
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def parse_filters(uri: str) -> AuditFilters:
    """The filters an audit URI names.

    Raises:
        MCPError: a filter is malformed.
    """
    params = parse_qs(urlsplit(uri).query)
    limit = _one(params, "limit") or "100"
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        raise MCPError(types.INVALID_PARAMS, f"limit must be 1..{MAX_LIMIT}")
    return AuditFilters(
        subject=_one(params, "subject"),
        tool_name=_one(params, "tool"),
        correlation_id=_one(params, "correlation_id"),
        since=_time(params, "since"),
        until=_time(params, "until"),
        limit=int(limit),
    )


class AuditResource:
    """Serves the audit resources to callers with an auditor role."""

    def __init__(self, reader: AuditReader) -> None:
        self._reader = reader

    @staticmethod
    def handles(uri: str) -> bool:
        return uri == AUDIT_URI or uri.startswith((AUDIT_URI + "?", VERIFY_URI))

    @staticmethod
    def template() -> types.ResourceTemplate:
        return types.ResourceTemplate(
            name="audit log",
            uri_template=AUDIT_URI + "{?subject,tool,correlation_id,since,until,limit}",
            description="Events of your tenant for auditors (role auditor or admin); content stays sealed.",
            mime_type="application/json",
        )

    async def read(self, identity: Identity, uri: str) -> types.ReadResourceResult:
        """The resource's JSON.

        Raises:
            MCPError: the caller is no auditor, or a filter is malformed.
        """
        if not AUDITOR_ROLES & set(identity.roles):
            raise MCPError(types.INVALID_PARAMS, "the audit log needs the auditor or admin role")
        if uri.startswith(VERIFY_URI):
            body: dict[str, Any] = {"tenant": identity.tenant, **await self._reader.verify(identity.tenant)}
        else:
            body = {
                "tenant": identity.tenant,
                "events": await self._reader.search(identity.tenant, parse_filters(uri)),
            }
        text = json.dumps(body, ensure_ascii=False)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )
