"""Which MCP transport sessions (Mcp-Session-Id) exist, whose they are, until when.

The id is the ledger session's id, minted at `initialize` for the authenticated caller
(a client-chosen id is never adopted: no fixation). Records expire after the idle TTL and
every use slides it. A session also holds the resource URIs its client subscribed to
(resources/subscribe, at most MAX_SUBSCRIPTIONS) and the extensions its client declared at
`initialize` that the server serves (the SDK runs stateless and forgets them), which end with
it. Sessions are indexed
per subject, so erasure can end all of a subject's sessions (`end_subject`;
TransportSessionPurger is the erasure's purger). The Redis adapter
(transport/sessions_redis.py) lets any API replica serve any session;
`MemoryTransportSessions` serves the embedded gateway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

MAX_SUBSCRIPTIONS = 100
"""Resource subscriptions one session may hold: each is state kept for the client."""


@dataclass(frozen=True, slots=True)
class TransportSession:
    session_id: str
    tenant: str
    subject: str


class TransportSessions(Protocol):
    async def create(self, session: TransportSession, ttl: float) -> None:
        """Record a new session for `ttl` idle seconds."""
        ...

    async def touch(self, session_id: str, ttl: float) -> TransportSession | None:
        """The live session (its TTL restarted), or None when unknown or expired."""
        ...

    async def end(self, session_id: str) -> None:
        """Forget the session (DELETE, erasure)."""
        ...

    async def set_log_level(self, session_id: str, level: str) -> None:
        """Remember the minimum log level the client asked for (logging/setLevel)."""
        ...

    async def log_level(self, session_id: str) -> str | None:
        """The level the client asked for, None when it never asked."""
        ...

    async def set_extensions(self, session_id: str, extensions: frozenset[str]) -> None:
        """Remember the extensions the client declared at `initialize` (a live session only)."""
        ...

    async def extensions(self, session_id: str) -> frozenset[str]:
        """The extensions the session's client declared at `initialize` (none: empty)."""
        ...

    async def subscribe(self, session_id: str, uri: str) -> bool:
        """Subscribe the session to `uri`; False when the session is gone or holds
        MAX_SUBSCRIPTIONS others already."""
        ...

    async def unsubscribe(self, session_id: str, uri: str) -> None:
        """Drop the session's subscription to `uri` (none: nothing happens)."""
        ...

    async def subscribed(self, session_id: str, uri: str) -> bool:
        """Whether the session is subscribed to `uri`."""
        ...

    async def end_subject(self, tenant: str, subject: str) -> int:
        """End every live session of a subject (erasure); returns how many were live."""
        ...

    async def close(self) -> None: ...


class TransportSessionPurger:
    """The erasure purger ending an erased subject's MCP sessions: their next request gets
    404, and their open notification streams end at the next keepalive check."""

    name = "transport_sessions"

    def __init__(self, sessions: TransportSessions) -> None:
        self._sessions = sessions

    async def purge(self, tenant: str, subject: str) -> int:
        return await self._sessions.end_subject(tenant, subject)


class MemoryTransportSessions:
    def __init__(self, max_sessions: int = 100_000) -> None:
        self._sessions: dict[str, tuple[TransportSession, float]] = {}
        self._levels: dict[str, str] = {}
        self._extensions: dict[str, frozenset[str]] = {}
        self._subscriptions: dict[str, set[str]] = {}
        self._max_sessions = max_sessions

    async def create(self, session: TransportSession, ttl: float) -> None:
        now = time.monotonic()
        if len(self._sessions) >= self._max_sessions:
            self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
            self._subscriptions = {k: v for k, v in self._subscriptions.items() if k in self._sessions}
            self._extensions = {k: v for k, v in self._extensions.items() if k in self._sessions}
        self._sessions[session.session_id] = (session, now + ttl)

    async def touch(self, session_id: str, ttl: float) -> TransportSession | None:
        entry = self._sessions.get(session_id)
        now = time.monotonic()
        if entry is None or entry[1] <= now:
            self._sessions.pop(session_id, None)
            return None
        self._sessions[session_id] = (entry[0], now + ttl)
        return entry[0]

    async def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._levels.pop(session_id, None)
        self._subscriptions.pop(session_id, None)
        self._extensions.pop(session_id, None)

    async def set_log_level(self, session_id: str, level: str) -> None:
        if session_id in self._sessions:
            self._levels[session_id] = level

    async def log_level(self, session_id: str) -> str | None:
        return self._levels.get(session_id)

    async def set_extensions(self, session_id: str, extensions: frozenset[str]) -> None:
        if session_id in self._sessions:
            self._extensions[session_id] = extensions

    async def extensions(self, session_id: str) -> frozenset[str]:
        return self._extensions.get(session_id, frozenset())

    async def subscribe(self, session_id: str, uri: str) -> bool:
        entry = self._sessions.get(session_id)
        if entry is None or entry[1] <= time.monotonic():
            return False
        uris = self._subscriptions.setdefault(session_id, set())
        if uri not in uris and len(uris) >= MAX_SUBSCRIPTIONS:
            return False
        uris.add(uri)
        return True

    async def unsubscribe(self, session_id: str, uri: str) -> None:
        self._subscriptions.get(session_id, set()).discard(uri)

    async def subscribed(self, session_id: str, uri: str) -> bool:
        return session_id in self._sessions and uri in self._subscriptions.get(session_id, ())

    async def end_subject(self, tenant: str, subject: str) -> int:
        now = time.monotonic()
        ended = [
            session_id
            for session_id, (session, _) in self._sessions.items()
            if (session.tenant, session.subject) == (tenant, subject)
        ]
        live = sum(1 for session_id in ended if self._sessions.pop(session_id)[1] > now)
        for session_id in ended:
            self._levels.pop(session_id, None)
            self._subscriptions.pop(session_id, None)
            self._extensions.pop(session_id, None)
        return live

    async def close(self) -> None:
        return None
