"""The session read model and how one stored event changes it.

Pure: the same folding is used live (from ledger.events) and when rebuilding from the
event store, which is why a rebuilt projection equals the live one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.events import (
    DomainEvent,
    SessionClosed,
    SessionNoteDeleted,
    SessionNoteWritten,
    SessionOpened,
    ToolFailed,
    ToolSucceeded,
)
from mcp_ledger.domain.upstreams.events import SessionToolsSelected


class SessionView(BaseModel):
    """What the API shows of a session. `last_position` is the projection's checkpoint:
    the global position of the last event folded in, so replays and duplicates are skipped."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    session_id: str
    subject: str
    opened_at: float
    notes: dict[str, Any] = Field(default_factory=dict)
    calls_succeeded: int = 0
    calls_failed: int = 0
    last_tool: str | None = None
    last_position: int = 0
    closed: bool = False
    stream_version: int = 0
    tool_selection: list[str] | None = None
    """fnmatch patterns of the registered and upstream tools this session lists (select_tools)."""
    """The version in its stream of the last event folded in: the next must be one more, or
    events were missed (the state store lost them) and the view is rebuilt from the stream."""


def fold(view: SessionView | None, event: DomainEvent, position: int) -> SessionView | None:
    """The view after one event at a global position (None until the session is opened)."""
    if isinstance(event, SessionOpened):
        return SessionView(
            tenant=event.tenant,
            session_id=event.session_id,
            subject=event.subject,
            opened_at=event.opened_at,
            last_position=position,
        )
    if view is None:
        return None
    changes: dict[str, Any] = {"last_position": position}
    if isinstance(event, SessionNoteWritten):
        changes["notes"] = {**view.notes, event.key: event.value}
    elif isinstance(event, SessionNoteDeleted):
        changes["notes"] = {k: v for k, v in view.notes.items() if k != event.key}
    elif isinstance(event, ToolSucceeded):
        changes.update(calls_succeeded=view.calls_succeeded + 1, last_tool=event.tool_name)
    elif isinstance(event, ToolFailed):
        changes.update(calls_failed=view.calls_failed + 1, last_tool=event.tool_name)
    elif isinstance(event, SessionClosed):
        changes["closed"] = True
    elif isinstance(event, SessionToolsSelected):
        changes["tool_selection"] = list(event.patterns) or None
    return view.model_copy(update=changes)
