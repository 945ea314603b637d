"""Server-to-client notifications on a session's GET stream, fed by ledger.events.

Every API replica holds a broadcast subscription to ledger.events, so whichever replica a
client's GET stream landed on sees the events of that client's session. Each SSE event's
id is the stored event's global position: a client reconnecting with Last-Event-ID gets
what it missed replayed from the event store, then the live feed, with no gap and no
duplicate. The same hub feeds 2026-07-28 `subscriptions/listen` streams (mcp_api/listen.py),
which listen per tenant: resource updates of the tenant's sessions and tool-set changes, each
with the session it is about, for the stream to filter by its caller. This module maps events
to notifications; it never decides anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mcp_ledger.domain.streams import parse_session_stream, parse_task_stream, session_stream
from mcp_ledger.domain.upstreams.tools import RESOURCE_UPDATED_TOOL
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.producers.ports import Message

log = logging.getLogger(__name__)

SESSION_URI_PREFIX = "ledger://sessions/"
QUEUE_LIMIT = 1000
_STATE_EVENTS = frozenset({"SessionNoteWritten", "SessionNoteDeleted", "SessionClosed", "ToolSucceeded"})
TOOL_SET_EVENTS = frozenset({"ToolRegistered", "ToolUpdated", "ToolRemoved"})
TASK_STATUS_EVENTS = frozenset(
    {
        "McpTaskStatusChanged",
        "McpTaskInputRequired",
        "McpTaskInputAnswered",
        "McpTaskCompleted",
        "McpTaskFailed",
        "McpTaskCancelled",
    }
)
TASK_CHANGED = "notifications/tasks"

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
DEFAULT_LOG_LEVEL = "warning"
"""What a session hears until it calls logging/setLevel: failures, not every success."""

Notification = dict[str, Any]
TenantItem = tuple[str | None, Notification]
"""What a tenant listener gets: the session a change is about (None: the whole tenant's)."""


def log_rank(level: str) -> int:
    """Severity order of an MCP log level (unknown levels rank lowest)."""
    return LOG_LEVELS.index(level) if level in LOG_LEVELS else 0


def is_log_message(notification: Notification) -> bool:
    return notification.get("method") == "notifications/message"


def _log(level: str, data: dict[str, Any]) -> Notification:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": level, "logger": "ledger", "data": data},
    }


StreamReader = Callable[[str], Awaitable[list[StoredEvent]]]
Opener = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""A stored event (wire form) with its sealed fields opened (crypto/records.py open_wire)."""


def _upstream_update(event: dict[str, Any]) -> bool:
    """The record of an upstream's resource update (its URI is sealed: opened to deliver it)."""
    data = event.get("data") or {}
    return event.get("event_type") == "ToolSucceeded" and data.get("tool_name") == RESOURCE_UPDATED_TOOL


def notifications_for(event: dict[str, Any]) -> list[Notification]:
    """The JSON-RPC notifications one stored event (wire form) means for its session."""
    located = parse_session_stream(str(event.get("stream_id", "")))
    if located is None:
        return []
    event_type = event.get("event_type")
    if _upstream_update(event):
        uri = ((event.get("data") or {}).get("structured") or {}).get("uri")
        if not isinstance(uri, str):
            return []  # unopened, or the subject was erased: nothing to tell
        return [{"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}]
    if event_type in TOOL_SET_EVENTS:
        return [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]
    notifications: list[Notification] = []
    if event_type in _STATE_EVENTS:
        uri = f"{SESSION_URI_PREFIX}{located[1]}"
        notifications.append(
            {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}}
        )
    # Log lines name the tool and the outcome only: arguments, outputs and messages are
    # personal data, sealed on the bus, and never copied into logs.
    data = event.get("data") or {}
    about = {"event": event_type, "tool": data.get("tool_name"), "position": event.get("position")}
    if event_type == "ToolSucceeded":
        notifications.append(_log("info", about))
    elif event_type == "ToolFailed":
        notifications.append(_log("warning", {**about, "error_code": data.get("error_code")}))
    return notifications


class NotificationHub:
    """Routes events to the GET streams open on this replica."""

    def __init__(self, read_stream: StreamReader | None, opener: Opener | None = None) -> None:
        self._read_stream = read_stream
        self._opener = opener
        self._listeners: dict[tuple[str, str], set[asyncio.Queue[tuple[int, Notification]]]] = defaultdict(
            set
        )
        self._tenant_listeners: dict[str, set[asyncio.Queue[TenantItem]]] = defaultdict(set)

    @property
    def listeners(self) -> int:
        return sum(len(queues) for queues in self._listeners.values())

    async def on_event(self, message: Message) -> None:
        """Broadcast handler for ledger.events."""
        task = parse_task_stream(message.key)
        if task is not None:
            self._task_changed(task, message)
            return
        located = parse_session_stream(message.key)
        if located is None or (located not in self._listeners and located[0] not in self._tenant_listeners):
            return
        event = await self._opened(json.loads(message.value))
        for notification in notifications_for(event):
            self._deliver(located, int(event["position"]), notification)
            if notification["method"] == "notifications/resources/updated":
                self._deliver_tenant(located[0], located[1], notification)
        subject = (event.get("data") or {}).get("subject")
        if event.get("event_type") == "SessionOpened" and isinstance(subject, str):
            # The subject's resource list (its sessions) grew; the subject is plaintext here
            # (domain/personal.py) and never leaves the replica: listen streams match on it.
            listed = {"method": "notifications/resources/list_changed", "subject": subject}
            self._deliver_tenant(located[0], located[1], listed)

    def _task_changed(self, task: tuple[str, str, str], message: Message) -> None:
        """A task's status moved: its tenant's listen streams and session GET streams hear
        which task and whose (the owner tag of its stream); each stream reads the task as its
        own caller, or drops it."""
        tenant, owner, task_id = task
        sessions = [key for key in self._listeners if key[0] == tenant]  # 2025-11-25 GET streams
        if tenant not in self._tenant_listeners and not sessions:
            return
        if json.loads(message.value).get("event_type") not in TASK_STATUS_EVENTS:
            return
        self._deliver_tenant(tenant, None, {"method": TASK_CHANGED, "owner": owner, "taskId": task_id})
        for key in sessions:
            self._deliver(key, 0, {"method": TASK_CHANGED, "owner": owner, "taskId": task_id})

    async def _opened(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._opener is None or not _upstream_update(event):
            return event
        try:
            return await self._opener(event)
        except Exception as error:  # boundary: an event that cannot be opened tells nothing
            log.warning("cannot open an upstream resource update: %r", error)
            return event

    def tools_changed(self, tenant: str, session_id: str | None) -> None:
        """Tell the clients of one session (or of every session of a tenant) to list tools again."""
        notification: Notification = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
        for key in list(self._listeners):
            if key[0] == tenant and (session_id is None or key[1] == session_id):
                self._deliver(key, 0, notification)
        self._deliver_tenant(tenant, session_id, notification)

    def _deliver_tenant(self, tenant: str, session_id: str | None, notification: Notification) -> None:
        for queue in self._tenant_listeners.get(tenant, ()):
            if queue.full():
                queue.get_nowait()  # level triggers: the newest says as much as the oldest
            queue.put_nowait((session_id, notification))

    def _deliver(self, key: tuple[str, str], position: int, notification: Notification) -> None:
        for queue in self._listeners.get(key, ()):
            if queue.full():
                log.warning("notification queue full for a session stream; dropping the oldest")
                queue.get_nowait()
            queue.put_nowait((position, notification))

    @contextmanager
    def listening(self, tenant: str, session_id: str) -> Iterator[asyncio.Queue[tuple[int, Notification]]]:
        """A queue receiving the live notifications of one session while the block runs."""
        key = (tenant, session_id)
        queue: asyncio.Queue[tuple[int, Notification]] = asyncio.Queue(QUEUE_LIMIT)
        self._listeners[key].add(queue)
        try:
            yield queue
        finally:
            self._listeners[key].discard(queue)
            if not self._listeners[key]:
                del self._listeners[key]

    @contextmanager
    def listening_to_tenant(self, tenant: str) -> Iterator[asyncio.Queue[TenantItem]]:
        """A queue receiving the tenant's resource updates and tool-set changes while the block runs."""
        queue: asyncio.Queue[TenantItem] = asyncio.Queue(QUEUE_LIMIT)
        self._tenant_listeners[tenant].add(queue)
        try:
            yield queue
        finally:
            self._tenant_listeners[tenant].discard(queue)
            if not self._tenant_listeners[tenant]:
                del self._tenant_listeners[tenant]

    async def missed(
        self, tenant: str, session_id: str, last_event_id: int
    ) -> list[tuple[int, Notification]]:
        """(position, notification) of the session's stored events after `last_event_id`."""
        if self._read_stream is None:
            return []
        missed: list[tuple[int, Notification]] = []
        for stored in await self._read_stream(session_stream(tenant, session_id)):
            if stored.position > last_event_id:
                event = await self._opened(stored.to_json())
                missed += [(stored.position, notification) for notification in notifications_for(event)]
        return missed
