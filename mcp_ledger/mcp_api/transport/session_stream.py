"""The GET stream of an MCP transport session: its notifications as server-sent events.

Listens on the hub before replaying what the client missed (Last-Event-ID, from the event
store), so nothing published meanwhile is lost; sends log messages at the level the client
set, resource updates only for the URIs it subscribed to (resources/subscribe), and
`notifications/tasks/status` of its own subject's tasks (read as that subject); ends when
the session ends or expires (checked at each keepalive). Owns neither the session checks
(session_layer.py) nor where notifications come from (notifications.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mcp_ledger.mcp_api.transport.notifications import (
    DEFAULT_LOG_LEVEL,
    TASK_CHANGED,
    NotificationHub,
    is_log_message,
    log_rank,
)
from mcp_ledger.mcp_api.transport.sessions import TransportSession, TransportSessions

MCP_SESSION_HEADER = "mcp-session-id"
KEEPALIVE_SECONDS = 15.0

TaskStatus = Callable[[str, str, str, str], Awaitable[dict[str, Any] | None]]
"""(tenant, subject, owner tag, task id) -> the task's status notification for that subject's
stream, None when the task is not theirs (or gone)."""


class SessionStream:
    """Notification streams of transport sessions."""

    def __init__(
        self,
        hub: NotificationHub,
        sessions: TransportSessions,
        ttl: float,
        task_status: TaskStatus | None = None,
    ) -> None:
        self._task_status = task_status
        self._hub = hub
        self._sessions = sessions
        self._ttl = ttl

    def response(self, request: Request, session: TransportSession) -> Response:
        """The SSE response streaming the session's notifications (Last-Event-ID resumes)."""
        last = request.headers.get("last-event-id")
        last_event_id = int(last) if last is not None and last.isdigit() else None
        events = self._sse(session, last_event_id)
        headers = {MCP_SESSION_HEADER: session.session_id, "cache-control": "no-store"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    async def _sse(self, session: TransportSession, last_event_id: int | None) -> AsyncIterator[str]:
        # Listen before replaying, so nothing published during the replay is missed; an
        # event can mean several notifications, so duplicates are told apart by both.
        with self._hub.listening(session.tenant, session.session_id) as queue:
            yield ": listening\n\n"  # tells the client that nothing from now on can be missed
            seen = _Seen(last_event_id or 0)
            if last_event_id is not None:
                for position, notification in await self._hub.missed(
                    session.tenant, session.session_id, last_event_id
                ):
                    if seen.first_time(position, notification) and await self._wanted(session, notification):
                        yield _sse_event(position, notification)
            while True:
                try:
                    position, notification = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await self._sessions.touch(session.session_id, self._ttl) is None:
                        return  # the session ended or expired: so does its stream
                    yield ": keepalive\n\n"
                    continue
                if notification.get("method") == TASK_CHANGED:
                    status = await self._task(session, notification)
                    if status is not None:
                        yield _sse_event(0, status)
                elif seen.first_time(position, notification) and await self._wanted(session, notification):
                    yield _sse_event(position, notification)

    async def _task(self, session: TransportSession, changed: dict[str, Any]) -> dict[str, Any] | None:
        if self._task_status is None:
            return None
        owner, task_id = str(changed["owner"]), str(changed["taskId"])
        return await self._task_status(session.tenant, session.subject, owner, task_id)

    async def _wanted(self, session: TransportSession, notification: dict[str, Any]) -> bool:
        if notification.get("method") == "notifications/resources/updated":
            return await self._sessions.subscribed(session.session_id, str(notification["params"]["uri"]))
        if not is_log_message(notification):
            return True
        level = await self._sessions.log_level(session.session_id) or DEFAULT_LOG_LEVEL
        return log_rank(str(notification["params"]["level"])) >= log_rank(level)


class _Seen:
    """Which (position, notification) pairs a stream already sent. Positions only grow, so
    only the notifications of the highest position need remembering."""

    def __init__(self, after: int) -> None:
        self._floor = after  # the client has everything up to here (Last-Event-ID)
        self._position = after
        self._at_position: set[str] = set()

    def first_time(self, position: int, notification: dict[str, Any]) -> bool:
        if not position:
            return True  # not from the store (e.g. tools/list_changed): never replayed
        if position <= self._floor:
            return False
        key = json.dumps(notification, sort_keys=True)
        if position < self._position or (position == self._position and key in self._at_position):
            return False
        if position > self._position:
            self._position, self._at_position = position, set()
        self._at_position.add(key)
        return True


def _sse_event(position: int, notification: dict[str, Any]) -> str:
    event_id = f"id: {position}\n" if position else ""
    return f"{event_id}event: message\ndata: {json.dumps(notification)}\n\n"
