"""The export of one subject (right of access, portability): their history, opened, and state.

Owns the bundle's shape: every event recorded for the subject in global order with personal
fields opened (erased ones read as placeholders), and the current state of each of their
sessions replayed from the store. Does not write files or talk to the bus (the CLI does).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.streams import parse_session_stream
from mcp_ledger.eventstore.ports import AuditLog, AuditQuery, EventStore, StoredEvent

BUNDLE_FORMAT = "mcp-ledger-export/1"
_PAGE = 1000


async def subject_events(audit: AuditLog, tenant: str, subject: str) -> list[StoredEvent]:
    """Every event recorded for the subject, in global order, as stored (sealed)."""
    found: list[StoredEvent] = []
    after = 0
    while batch := await audit.query(
        AuditQuery(tenant=tenant, subject=subject, after_position=after, limit=_PAGE)
    ):
        found.extend(batch)
        after = batch[-1].position
    return found


async def export_subject(
    audit: AuditLog, store: EventStore, mapper: EventMapper, tenant: str, subject: str
) -> dict[str, Any]:
    """The JSON-ready bundle of the subject's opened history and current session state."""
    history = [await mapper.open(event) for event in await subject_events(audit, tenant, subject)]
    sessions = []
    for stream_id in sorted({e.stream_id for e in history if parse_session_stream(e.stream_id)}):
        events = [await mapper.to_domain(e) for e in await store.read_stream(stream_id)]
        state = Session.replay(stream_id, events)
        if state.is_owned_by(tenant, subject):
            sessions.append(
                {
                    "session_id": state.session_id,
                    "opened_at": state.opened_at,
                    "notes": state.notes,
                    "calls_succeeded": state.calls_succeeded,
                    "calls_failed": state.calls_failed,
                }
            )
    return {
        "format": BUNDLE_FORMAT,
        "tenant": tenant,
        "subject": subject,
        "exported_at": datetime.now(UTC).isoformat(),
        "events": [_exported(event) for event in history],
        "sessions": sessions,
    }


def _exported(event: StoredEvent) -> dict[str, Any]:
    return {
        "position": event.position,
        "recorded_at": event.recorded_at.isoformat(),
        "stream_id": event.stream_id,
        "event_type": event.event_type,
        "data": event.data,
        "correlation_id": event.metadata.get("correlation_id"),
    }
