"""Connecting to an upstream MCP server with the official SDK client, held open by a task.

Owns the egress rules for upstreams (the URL on the registration allowlist, its host
resolved at connect time and every address checked as for HTTP tools, plain-http
connections pinned to the checked address), the authentication headers (a static bearer or
header; the agent's own token is never passed through), optional mTLS with the gateway's
client certificate, and the protocol era: the SDK's `auto` mode tries `server/discover`
(2026-07-28) and falls back to `initialize` (2025-11-25). A connection is entered and left
by one owner task so it can be used from any command's task and closed from any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcp_ledger.consumers.bindings.egress import resolve_destination
from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.consumers.upstreams.relay.routing import InFlightCalls, outside_every_call
from mcp_ledger.domain.registry.registration import endpoint_problem
from mcp_ledger.domain.upstreams.model import UpstreamServer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
MODERN_PREFIX = "2026-"


@dataclass(frozen=True)
class EgressPolicy:
    """Where upstreams may be and the TLS identity the gateway may present (settings)."""

    allowed_hosts: tuple[str, ...] = ()
    stdio: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """The operator's stdio servers by name (settings): the only commands ever run."""
    local_tenant: str = "local"
    client_cert: str | None = None
    client_key: str | None = None
    ca_bundle: str | None = None


@dataclass(frozen=True)
class UpstreamTarget:
    """A server's entry plus its opened secret: everything needed to connect."""

    server: UpstreamServer
    secret: str | None = None
    tenant: str = ""
    """Whose registry the entry is in: the operator's stdio servers serve only the local tenant."""
    scope: str | None = None
    """The registry's session (None: tenant-wide)."""
    subject: str | None = None
    """Whom the gateway calls for: the subject a token exchange asks an upstream token for."""
    offers: tuple[str, ...] | None = None
    """The client capabilities offered to the upstream (the agent's: sampling, elicitation,
    roots); None: all of them (the agent's are not known)."""
    legacy_first: bool = False
    """Connect with `initialize` (2025-11-25) first, for a 2025-11-25 agent's call: only then may
    the upstream send it requests during the call (a 2026-07-28 upstream asks with
    input_required rounds, which the client answers the same way)."""

    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate the gateway (never the agent) to the upstream.

        Raises:
            ToolExecutionError: the auth kind needs a secret that is missing or erased.
        """
        auth = self.server.auth
        if auth.kind == "none":
            return {}
        if auth.kind in {"client_credentials", "token_exchange"}:
            return {}  # a token per request: the connector's OAuth auth
        if not self.secret:
            raise ToolExecutionError(
                "upstream_auth", f"the secret of upstream {self.server.name!r} is missing or erased"
            )
        if auth.kind == "bearer":
            return {"authorization": f"Bearer {self.secret}"}
        return {auth.header: self.secret}


async def checked_url(url: str, policy: EgressPolicy) -> tuple[str, dict[str, str]]:
    """(URL to connect to, extra headers): allowlisted, resolved, every address checked;
    plain http is pinned to the checked address with the name in the Host header.

    Raises:
        ToolExecutionError: the URL is off the allowlist or resolves somewhere refused.
    """
    problem = endpoint_problem(url, policy.allowed_hosts)
    if problem is not None:
        raise ToolExecutionError("endpoint_refused", problem)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    destination = await resolve_destination(parts.hostname or "", port, policy.allowed_hosts)
    if parts.scheme == "https":
        return url, {}  # TLS checks the name; the residual rebinding window is in docs/security.md
    return destination.pin(url), {"host": parts.netloc}


def _verify(server: UpstreamServer, policy: EgressPolicy) -> ssl.SSLContext | bool:
    if not server.mtls:
        return True
    if policy.client_cert is None:
        raise ToolExecutionError(
            "upstream_mtls", "mTLS is asked for but the gateway has no client certificate"
        )
    context = ssl.create_default_context(cafile=policy.ca_bundle)
    context.load_cert_chain(policy.client_cert, policy.client_key)
    return context


@dataclass
class UpstreamConnection:
    """One open MCP client session to an upstream, owned by a background task."""

    client: Client
    close_event: asyncio.Event
    task: asyncio.Task[None]
    last_used: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    calls: InFlightCalls = field(default_factory=InFlightCalls)
    """The calls in flight on this session: each hears its own log notifications, and its
    agent answers the upstream's sampling, elicitation and roots requests of that call
    (relay/routing.py)."""

    @property
    def modern(self) -> bool:
        return self.client.protocol_version.startswith(MODERN_PREFIX)

    @property
    def alive(self) -> bool:
        return not self.task.done()

    async def close(self) -> None:
        self.close_event.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.task), timeout=5)
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


Connector = Callable[[UpstreamTarget], Awaitable[UpstreamConnection]]
ListChanged = Callable[["UpstreamTarget"], Awaitable[None]]
"""Called when an upstream says its tools, prompts or resources changed."""
ResourceUpdated = Callable[[Client, str], Awaitable[None]]
"""Called with the held client an upstream sent notifications/resources/updated on, and the URI."""


class UpstreamConnector:
    """Opens connections to upstreams under the egress policy."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        client_name: str = "mcp-ledger",
        oauth: Callable[[UpstreamTarget], httpx2.Auth] | None = None,
        exchange: Callable[[UpstreamTarget], Awaitable[httpx2.Auth]] | None = None,
    ) -> None:
        self._policy = policy
        self._client_name = client_name
        self._oauth = oauth
        self._exchange = exchange
        self._on_list_changed: ListChanged | None = None
        self._on_resource_updated: ResourceUpdated | None = None

    def on_list_changed(self, callback: ListChanged) -> None:
        """Hear the upstreams' tools/prompts/resources list_changed notifications."""
        self._on_list_changed = callback

    def on_resource_updated(self, callback: ResourceUpdated) -> None:
        """Hear the upstreams' notifications/resources/updated (subscriptions/resources.py)."""
        self._on_resource_updated = callback

    async def _resource_updated(self, ready: asyncio.Future[Client], uri: str) -> None:
        opened = ready.done() and not ready.cancelled() and ready.exception() is None
        if opened and self._on_resource_updated is not None:
            await self._on_resource_updated(ready.result(), uri)

    async def _transport(self, target: UpstreamTarget) -> Callable[[AsyncExitStack], Awaitable[Any]]:
        """How to reach the server: Streamable HTTP under the egress rules, or the operator's
        stdio command (exactly as configured, for the local tenant only).

        Raises:
            ToolExecutionError: refused by policy.
        """
        server = target.server
        if server.command:
            configured = self._policy.stdio.get(server.name)
            if target.tenant != self._policy.local_tenant or configured != tuple(server.command):
                raise ToolExecutionError(
                    "upstream_refused", f"{server.name!r} is not an operator's stdio server"
                )
            params = StdioServerParameters(command=server.command[0], args=list(server.command[1:]))

            async def stdio(stack: AsyncExitStack) -> Any:
                return stdio_client(params)

            return stdio
        if server.url is None:
            raise ToolExecutionError("upstream_unavailable", f"upstream {server.name!r} has no URL")
        url, pin_headers = await checked_url(server.url, self._policy)
        headers = {**pin_headers, **target.auth_headers()}
        verify = _verify(server, self._policy)

        oauth = await self._auth(target)

        async def http(stack: AsyncExitStack) -> Any:
            client = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=headers, verify=verify, auth=oauth, timeout=httpx2.Timeout(30.0, read=None)
                )
            )
            return streamable_http_client(url, http_client=client)

        return http

    async def _auth(self, target: UpstreamTarget) -> httpx2.Auth | None:
        """The OAuth flow of the entry's auth kind (a token exchange is made here, so a
        refusal is a clear error before the SDK's client runs).

        Raises:
            ToolExecutionError: this worker has no such flow, or the exchange was refused.
        """
        kind = target.server.auth.kind
        if kind == "client_credentials" and self._oauth is not None:
            return self._oauth(target)
        if kind == "token_exchange" and self._exchange is not None:
            return await self._exchange(target)
        if kind in {"client_credentials", "token_exchange"}:
            raise ToolExecutionError("upstream_auth", f"this worker has no {kind} client for upstreams")
        return None

    async def open(self, target: UpstreamTarget) -> UpstreamConnection:
        """A connected, initialized client (in the 2025-11-25 era first when the target asks,
        falling back to `auto` for an upstream that only speaks 2026-07-28).

        Raises:
            ToolExecutionError: refused by policy, or the upstream cannot be reached.
        """
        if target.legacy_first:
            try:
                return await self._open(target, "legacy")
            except ToolExecutionError as error:
                if error.code != "upstream_unreachable":
                    raise
        return await self._open(target, "auto")

    async def _open(self, target: UpstreamTarget, mode: str) -> UpstreamConnection:
        server = target.server
        transport = await self._transport(target)
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        close_event = asyncio.Event()
        calls = InFlightCalls()

        async def on_message(message: Any) -> None:
            changed = (
                types.ToolListChangedNotification,
                types.PromptListChangedNotification,
                types.ResourceListChangedNotification,
            )
            if isinstance(message, changed) and self._on_list_changed is not None:
                await self._on_list_changed(target)
            if isinstance(message, types.ResourceUpdatedNotification):
                await self._resource_updated(ready, str(message.params.uri))

        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            owner = calls.owner()  # the call whose request stream it came on (relay/routing.py)
            if owner is not None and owner.log is not None:
                await owner.log(params.level, params.logger, params.data)

        async def own() -> None:
            outside_every_call()
            try:
                async with AsyncExitStack() as stack:
                    client = Client(
                        await transport(stack),
                        mode=mode,
                        cache=None,
                        logging_callback=on_log,
                        **_input_callbacks(calls, target.offers),
                        message_handler=on_message,
                        log_level="debug",
                    )
                    await stack.enter_async_context(client)
                    ready.set_result(client)
                    await close_event.wait()
            except BaseException as error:  # the owner's boundary: the opener hears it
                if not ready.done():
                    ready.set_exception(error)
                elif not isinstance(error, asyncio.CancelledError):
                    log.info("upstream %s connection ended: %r", server.name, error)

        task = asyncio.create_task(own(), name=f"upstream:{server.name}")
        try:
            client = await asyncio.wait_for(asyncio.shield(ready), timeout=CONNECT_TIMEOUT_S)
        except ToolExecutionError:
            raise
        except Exception as error:
            close_event.set()
            task.cancel()
            clear = _clear_error(error)
            if clear is not None:  # e.g. a token exchange refused on the SDK client's request
                raise clear from None
            raise ToolExecutionError(
                "upstream_unreachable", f"cannot connect to upstream {server.name!r}: {_reason(error)}"
            ) from None
        return UpstreamConnection(client, close_event, task, calls=calls)


def _input_callbacks(calls: InFlightCalls, offers: tuple[str, ...] | None) -> dict[str, Any]:
    """The client's sampling, elicitation and roots callbacks (those offered: a callback is
    what declares the capability), each asking the agent of the call the request came with
    (the back channel, relay/routing.py); with no such call the upstream hears an error."""

    async def ask(method: str, params: Any, result: type[types.Result]) -> Any:
        owner = calls.owner()
        if owner is None or owner.ask is None:
            return types.ErrorData(code=types.METHOD_NOT_FOUND, message=f"no agent to ask for {method}")
        wire = None if params is None else params.model_dump(mode="json", by_alias=True, exclude_none=True)
        answer = await owner.ask(method, wire)
        if isinstance(answer, types.ErrorData):
            return answer
        try:
            return result.model_validate(answer)
        except ValueError as error:
            return types.ErrorData(code=types.INVALID_PARAMS, message=f"the agent's {method} answer: {error}")

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
        return await ask("sampling/createMessage", params, types.CreateMessageResult)

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> Any:
        return await ask("elicitation/create", params, types.ElicitResult)

    async def roots(context: Any) -> Any:
        return await ask("roots/list", None, types.ListRootsResult)

    callbacks = {
        "sampling": ("sampling_callback", sampling),
        "elicitation": ("elicitation_callback", elicitation),
        "roots": ("list_roots_callback", roots),
    }
    return {key: fn for name, (key, fn) in callbacks.items() if offers is None or name in offers}


def _clear_error(error: BaseException) -> ToolExecutionError | None:
    if isinstance(error, ToolExecutionError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _clear_error(inner)
            if found is not None:
                return found
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup) and error.exceptions:
        return _reason(error.exceptions[0])
    return f"{type(error).__name__}: {error}"[:300]
