"""The Session aggregate: a conversation's state, rebuilt by replaying its stream.

Owns what a session remembers (owner, notes, call count) and how each event changes it.
Does not decide anything about tools; see decisions.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from mcp_ledger.domain.events import (
    DomainEvent,
    SessionClosed,
    SessionNoteDeleted,
    SessionNoteWritten,
    SessionOpened,
    ToolCalled,
    ToolFailed,
    ToolSucceeded,
)


@dataclass
class Session:
    """State of one session stream; `version` is the number of events applied."""

    stream_id: str
    version: int = 0
    session_id: str | None = None
    tenant: str | None = None
    subject: str | None = None
    opened_at: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    calls_succeeded: int = 0
    calls_failed: int = 0
    last_active_at: float | None = None
    closed: bool = False

    @property
    def exists(self) -> bool:
        """Whether the session was opened."""
        return self.session_id is not None

    def is_owned_by(self, tenant: str, subject: str) -> bool:
        """Whether this session belongs to that tenant and subject."""
        return self.exists and self.tenant == tenant and self.subject == subject

    def copy(self) -> Session:
        """An independent copy (notes included) that can be folded further on its own."""
        return replace(self, notes=dict(self.notes))

    def is_expired(self, now: float, ttl: float | None) -> bool:
        """Whether the session sat idle longer than `ttl` seconds before `now`."""
        if ttl is None or self.last_active_at is None:
            return False
        return now - self.last_active_at > ttl

    def apply(self, event: DomainEvent) -> None:
        """Fold one event into the state."""
        self.version += 1
        if isinstance(event, SessionOpened):
            self.session_id, self.tenant, self.subject = event.session_id, event.tenant, event.subject
            self.opened_at = self.last_active_at = event.opened_at
        elif isinstance(event, ToolCalled):
            if event.issued_at is not None:
                self.last_active_at = max(self.last_active_at or 0.0, event.issued_at)
        elif isinstance(event, SessionClosed):
            self.closed = True
        elif isinstance(event, SessionNoteWritten):
            self.notes[event.key] = event.value
        elif isinstance(event, SessionNoteDeleted):
            self.notes.pop(event.key, None)
        elif isinstance(event, ToolSucceeded):
            self.calls_succeeded += 1
        elif isinstance(event, ToolFailed):
            self.calls_failed += 1

    @classmethod
    def replay(cls, stream_id: str, events: Iterable[DomainEvent]) -> Session:
        """Rebuild a session from its events in stream order."""
        session = cls(stream_id=stream_id)
        for event in events:
            session.apply(event)
        return session
