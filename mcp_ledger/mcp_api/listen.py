"""subscriptions/listen (2026-07-28, SEP-2575): one request is one stream of change notifications.

Fed by the notification hub, which every API replica feeds from ledger.events and from the
registry watcher, so any replica serves any listener. A stream hears only its caller's
changes: tool-set changes of the caller's tenant (a session's own registrations only when the
stream names that session with Ledger-Session), resource updates of the caller's own
sessions (a `ledger://sessions/{id}` the caller does not own is acknowledged, as the spec
honours every URI, and never fires) and the caller's resource list growing when one of its
sessions opens. An upstream server's URI is subscribed to on the upstream for the stream's
lifetime, in the session the stream names with Ledger-Session (it is refused without one:
the worker records the updates in that session), and unsubscribed when the stream ends.
Prompts are fixed, so `promptsListChanged` is acknowledged and never fires.
A client that negotiated the tasks extension also hears `notifications/tasks` (SEP-2663) for
its own tasks: each status change of a task stream, read as its caller's tasks/get reads it.

The acknowledgement is the first frame; every frame carries the request id as
`io.modelcontextprotocol/subscriptionId`. A stream ends after MAX_LISTEN_SECONDS with its
result (the client listens again, and so shows its token again), or when the client goes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, cast

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import (
    SUBSCRIPTION_ID_META_KEY,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
    event_to_notification,
)

from mcp_ledger.domain.streams import subject_tag
from mcp_ledger.mcp_api.auth.identity import BadSessionHeaderError, Identity, session_from_headers
from mcp_ledger.mcp_api.tasks.methods import TaskMethods
from mcp_ledger.mcp_api.transport.notifications import (
    SESSION_URI_PREFIX,
    TASK_CHANGED,
    Notification,
    NotificationHub,
    TenantItem,
)
from mcp_ledger.mcp_api.transport.sessions import MAX_SUBSCRIPTIONS
from mcp_ledger.mcp_api.upstreams import UpstreamSurface
from mcp_ledger.projections.sessions.ports import SessionViewStore

MAX_LISTEN_SECONDS = 600.0
MAX_STREAMS = 1024
"""Open listen streams per replica; one more is refused before its acknowledgement."""


class ListenStreams:
    """The subscriptions/listen handler."""

    def __init__(
        self,
        hub: NotificationHub,
        views: SessionViewStore,
        *,
        lifetime: float | None = None,
        tasks: TaskMethods | None = None,
        upstreams: UpstreamSurface | None = None,
    ):
        self._tasks = tasks
        self._hub = hub
        self._upstreams = upstreams
        self._views = views
        self._lifetime = MAX_LISTEN_SECONDS if lifetime is None else lifetime
        self._open = 0

    async def listen(
        self,
        ctx: ServerRequestContext[Any],
        identity: Identity,
        params: types.SubscriptionsListenRequestParams,
    ) -> types.SubscriptionsListenResult:
        """Serve one stream until its lifetime ends or the client disconnects.

        Raises:
            MCPError: no request id, a bad session header or too many URIs (invalid), or the
                replica's stream limit reached (internal error).
        """
        if ctx.request_id is None:
            raise MCPError(types.INVALID_REQUEST, "subscriptions/listen requires a request id")
        if self._open >= MAX_STREAMS:
            raise MCPError(types.INTERNAL_ERROR, "Subscription limit reached")
        wanted = params.notifications
        uris = list(wanted.resource_subscriptions or [])
        if len(uris) > MAX_SUBSCRIPTIONS:
            raise MCPError(
                types.INVALID_PARAMS, f"a stream subscribes to at most {MAX_SUBSCRIPTIONS} resources"
            )
        try:
            session_id = session_from_headers(ctx.request)
        except BadSessionHeaderError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from error
        own = await self._own(identity, uris)
        if session_id is not None and not await self._own(identity, [SESSION_URI_PREFIX + session_id]):
            session_id = None  # another's session: its tool-set changes are not this caller's
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: ctx.request_id}
        ack = types.SubscriptionsAcknowledgedNotificationParams(notifications=_honored(wanted), _meta=meta)
        with self._hub.listening_to_tenant(identity.tenant) as queue:
            self._open += 1
            upstream: list[str] = []
            try:
                upstream = await self._upstream(identity, session_id, [u for u in uris if u not in own])
                await _send(ctx, types.SubscriptionsAcknowledgedNotification(params=ack))
                with contextlib.suppress(TimeoutError):  # the lifetime: ended with its result
                    async with asyncio.timeout(self._lifetime):
                        tasks = self._tasks is not None and self._tasks.listening(ctx, params.meta)
                        wants = _Wants(wanted, identity.subject, session_id, own, tasks, frozenset(upstream))
                        await self._forward(ctx, queue, meta, wants, identity)
            finally:
                self._open -= 1
                await self._drop(identity, session_id, upstream)
        return types.SubscriptionsListenResult(_meta=meta)

    async def _upstream(self, identity: Identity, session_id: str | None, uris: list[str]) -> list[str]:
        """The URIs that are upstream servers', each subscribed to there for this stream.

        Raises:
            MCPError: the upstream (or the worker, without a session) refused one.
        """
        held: list[str] = []
        if self._upstreams is None:
            return held
        try:
            for uri in uris:
                if await self._upstreams.subscription(identity, session_id, uri, on=True):
                    held.append(uri)
        except MCPError:
            await self._drop(identity, session_id, held)
            raise
        return held

    async def _drop(self, identity: Identity, session_id: str | None, uris: list[str]) -> None:
        """Unsubscribe upstream; best effort (the client may be gone, the upstream session too)."""
        if self._upstreams is None:
            return
        for uri in uris:
            with contextlib.suppress(MCPError):
                await asyncio.shield(self._upstreams.subscription(identity, session_id, uri, on=False))

    async def _forward(
        self,
        ctx: ServerRequestContext[Any],
        queue: asyncio.Queue[TenantItem],
        meta: dict[str, Any],
        wants: _Wants,
        identity: Identity,
    ) -> None:
        """Send each change this stream wants, until cancelled."""
        while True:
            about, notification = await queue.get()
            if notification.get("method") == TASK_CHANGED:
                await self._task_changed(ctx, notification, meta, wants, identity)
                continue
            event = wants.event(notification, about)
            if event is not None:
                await _send(ctx, event_to_notification(event, meta))

    async def _task_changed(
        self,
        ctx: ServerRequestContext[Any],
        notification: Notification,
        meta: dict[str, Any],
        wants: _Wants,
        identity: Identity,
    ) -> None:
        """notifications/tasks for the caller's own task (SEP-2663), read as tasks/get reads
        it: another subject's task (another owner tag, or not found as the caller's) is dropped."""
        if self._tasks is None or not wants.tasks or notification.get("owner") != subject_tag(wants.subject):
            return
        frame = await self._tasks.notification(identity, str(notification.get("taskId")), meta)
        if frame is not None:
            await ctx.session.send_notification(
                cast(types.ServerNotification, frame), related_request_id=ctx.request_id
            )

    async def _own(self, identity: Identity, uris: list[str]) -> frozenset[str]:
        """The URIs naming a session of the caller's (the only resources that change)."""
        own: set[str] = set()
        for uri in uris:
            if not uri.startswith(SESSION_URI_PREFIX):
                continue
            view = await self._views.get(identity.tenant, uri.removeprefix(SESSION_URI_PREFIX))
            if view is not None and view.subject == identity.subject:
                own.add(uri)
        return frozenset(own)


@dataclass(frozen=True)
class _Wants:
    """What one stream asked for, narrowed to its caller."""

    filter: types.SubscriptionFilter
    subject: str
    session_id: str | None
    own: frozenset[str]
    tasks: bool = False
    """The stream's client negotiated the tasks extension: it hears its tasks' status."""
    upstream: frozenset[str] = frozenset()
    """Upstream URIs subscribed to for this stream: their updates are recorded in its session."""

    def event(self, notification: Notification, about: str | None) -> ServerEvent | None:
        """The event `notification` means for this stream, None when it wants nothing of it."""
        method = notification.get("method")
        if method == "notifications/tools/list_changed":
            wanted = self.filter.tools_list_changed and about in (None, self.session_id)
            return ToolsListChanged() if wanted else None
        if method == "notifications/resources/list_changed":
            wanted = self.filter.resources_list_changed and notification.get("subject") == self.subject
            return ResourcesListChanged() if wanted else None
        if method == "notifications/resources/updated":
            uri = str(notification["params"]["uri"])
            mine = uri in self.own or (uri in self.upstream and about == self.session_id)
            return ResourceUpdated(uri=uri) if mine else None
        return None


def _honored(wanted: types.SubscriptionFilter) -> types.SubscriptionFilter:
    """What the acknowledgement echoes: every requested kind (whether it fires is ours to know)."""
    return types.SubscriptionFilter(
        tools_list_changed=True if wanted.tools_list_changed else None,
        prompts_list_changed=True if wanted.prompts_list_changed else None,
        resources_list_changed=True if wanted.resources_list_changed else None,
        resource_subscriptions=list(wanted.resource_subscriptions) if wanted.resource_subscriptions else None,
    )


async def _send(ctx: ServerRequestContext[Any], notification: types.ServerNotification) -> None:
    await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
