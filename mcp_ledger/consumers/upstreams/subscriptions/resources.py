"""Runners of upstream_resource_subscribe / _unsubscribe / _updated: an agent's
resources/subscribe to an upstream's URI, held on the worker's upstream session.

The subscription is made on the held upstream session of the command's ledger session (one
per ledger session and server, sessions.py), so it lives exactly as long as that session: a
subject's subscriptions are never on another subject's upstream session. When the upstream
sends notifications/resources/updated on that session, this worker records
`upstream_resource_updated` in the ledger session's stream as the subscriber (a command it
issues itself, through its own handler); ledger.events then carries it to every API replica,
whose GET streams and subscriptions/listen streams deliver it to that session only. Erasing
the subject forgets its subscriptions here (registered with the erasure barrier's caches).
2026-07-28 upstreams are stateless and have no resources/subscribe: subscribing there is
refused with `upstream_unsupported` (their own subscriptions/listen is not used yet).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from mcp import Client
from mcp.shared.exceptions import MCPDeprecationWarning

from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome, ToolRunner
from mcp_ledger.consumers.upstreams.calls import UpstreamCalls
from mcp_ledger.consumers.upstreams.connection import MODERN_PREFIX
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.upstreams.tools import RESOURCE_UPDATED_TOOL
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.upstream_routes import Route, resource_route

log = logging.getLogger(__name__)

MAX_PENDING_RECORDS = 256
"""Updates being recorded at once on this worker; more are dropped (level triggered: the
next update says as much)."""

Record = Callable[[CallTool], Awaitable[object]]


class UpstreamSubscriptions:
    """The subscriptions this worker holds, by upstream client and URI."""

    def __init__(self, catalog: ToolCatalog, calls: UpstreamCalls) -> None:
        self._catalog = catalog
        self._calls = calls
        # By the held client (its id: a Client is unhashable), forgotten when it is: a closed
        # or re-established upstream session takes its subscriptions with it.
        self._held: dict[int, tuple[weakref.ref[Client], dict[str, CallTool]]] = {}
        self._record: Record | None = None
        self._pending: set[asyncio.Task[object]] = set()

    def attach(self, record: Record) -> None:
        """Where updates are recorded: this worker's command handler."""
        self._record = record

    def forget_subject(self, tenant: str, subject: str) -> None:
        """Erasure: the subject's subscriptions end here (an update after it records nothing).
        The upstream keeps its side until the held session closes."""
        for _, uris in list(self._held.values()):
            for uri, command in list(uris.items()):
                if (command.tenant, command.subject) == (tenant, subject):
                    del uris[uri]

    def set_caching(self, enabled: bool) -> None:
        """Subscriptions are not a cache of opened data: kept while the barrier is down."""

    def runners(self) -> dict[str, ToolRunner]:
        return {
            "upstream_resource_subscribe": self.subscribe,
            "upstream_resource_unsubscribe": self.unsubscribe,
            RESOURCE_UPDATED_TOOL: self.updated,
        }

    def __len__(self) -> int:
        return sum(len(uris) for _, uris in self._held.values())

    def _of(self, client: Client) -> dict[str, CallTool]:
        """The subscriptions held on `client`'s session (empty for one never used here)."""
        found = self._held.get(id(client))
        return found[1] if found is not None and found[0]() is client else {}

    def _hold(self, client: Client, uri: str, command: CallTool) -> None:
        found = self._held.get(id(client))
        if found is None or found[0]() is not client:
            key = id(client)
            found = (weakref.ref(client, lambda _: self._held.pop(key, None)), {})
            self._held[key] = found
        found[1][uri] = command

    async def _route(self, call: ToolInvocation) -> tuple[str, Route]:
        command = call.command
        uri = str(command.arguments["uri"])
        if command.session_id is None:
            raise ToolExecutionError("session_required", "resource subscriptions need a ledger session")
        upstreams = await self._catalog.upstreams(command.tenant, command.session_id)
        route = resource_route(upstreams, uri)
        if route is None:
            raise ToolExecutionError("unknown_resource", f"no upstream server here offers {uri!r}")
        denied = access_problem(command.roles, route.upstream.server.minimum_role, ())
        if denied is not None:
            raise ToolExecutionError("forbidden", denied)
        return uri, route

    async def subscribe(self, call: ToolInvocation) -> ToolOutcome:
        uri, route = await self._route(call)
        server = route.upstream.server
        command = call.command

        async def send(client: Client) -> str | None:
            unsupported = _unsupported(client, server.name)
            if unsupported is not None:
                return unsupported  # refused after the request: the upstream is not failing
            with warnings.catch_warnings():  # deprecated for 2026-07-28 only; this is 2025-11-25
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.subscribe_resource(uri)
            self._hold(client, uri, command)
            return None

        unsupported = await self._calls.request(
            command, server, route.scope, send, timeout_s=server.timeout_s, idempotent=True
        )
        if unsupported is not None:
            raise ToolExecutionError("upstream_unsupported", unsupported)
        return ToolOutcome([{"type": "text", "text": f"subscribed to {uri} of {server.name}"}], {"uri": uri})

    async def unsubscribe(self, call: ToolInvocation) -> ToolOutcome:
        uri, route = await self._route(call)
        server = route.upstream.server

        async def send(client: Client) -> None:
            held = self._of(client)
            if held.pop(uri, None) is None:
                return  # this session never subscribed (or its upstream session was renewed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.unsubscribe_resource(uri)

        await self._calls.request(
            call.command, server, route.scope, send, timeout_s=server.timeout_s, idempotent=True
        )
        return ToolOutcome([{"type": "text", "text": f"unsubscribed from {uri}"}], {"uri": uri})

    async def updated(self, call: ToolInvocation) -> ToolOutcome:
        """The record of one update; only this worker's own commands reach here with a
        subscription behind them (an agent calling it directly only tells itself)."""
        uri = str(call.command.arguments["uri"])
        return ToolOutcome([{"type": "text", "text": f"resource {uri} was updated"}], {"uri": uri})

    async def on_updated(self, client: Client, uri: str) -> None:
        """An upstream said `uri` changed on the session of `client`: record it for the
        ledger session that subscribed there (and nobody else)."""
        subscriber = self._of(client).get(uri)
        if subscriber is None or self._record is None:
            return
        if len(self._pending) >= MAX_PENDING_RECORDS:
            log.warning("dropping an upstream resource update: %d being recorded", len(self._pending))
            return
        command = CallTool(
            tenant=subscriber.tenant,
            subject=subscriber.subject,
            roles=subscriber.roles,
            session_id=subscriber.session_id,
            correlation_id=subscriber.command_id,
            tool_name=RESOURCE_UPDATED_TOOL,
            arguments={"uri": uri},
        )
        # Recorded off the upstream's message loop: the store must not hold up its session.
        task: asyncio.Task[Any] = asyncio.create_task(
            self._recorded(command), name="upstream-resource-updated"
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _recorded(self, command: CallTool) -> object:
        assert self._record is not None
        try:
            return await self._record(command)
        except Exception as error:  # boundary: a lost update is a lost notification, never a crash
            log.warning("recording an upstream resource update failed: %r", error)
            return None


def _unsupported(client: Client, server: str) -> str | None:
    """Why this upstream session cannot hold a resource subscription, None when it can."""
    if client.protocol_version.startswith(MODERN_PREFIX):
        return f"{server} speaks {client.protocol_version}, which has no resources/subscribe"
    resources = client.server_capabilities.resources
    if resources is None or not resources.subscribe:
        return f"{server} offers no resource subscriptions"
    return None
