"""`tools/list` answered from the listing cache ahead of the SDK (tools/listing_cache.py).

Sits between the session layer and the SDK's JSON transport. A POST that is a plain
`tools/list` (no params but `_meta` and `cursor`) gets its audience and freshness computed
first; the stored answer for exactly those is written as is, with the request's id. Anything
else, a miss, or any failure computing the key goes to the SDK unchanged, and a miss's
successful JSON answer is kept. Only answers the SDK gave to an identical request (same
identity, session, headers and params) are ever replayed, so every check the SDK makes on
those has already passed for them. The freshness is read before the SDK builds its answer, so
a kept answer is never older than the versions it is stored under.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_ledger.mcp_api.auth.identity import IdentityResolver, session_from_headers
from mcp_ledger.mcp_api.tools.listing_cache import (
    CachedListing,
    ListingAudience,
    ListingCache,
    ListingFreshness,
)
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.sessions.ports import SessionViewStore

log = logging.getLogger(__name__)

MAX_LISTING_REQUEST_BYTES = 64 * 1024
"""A tools/list request is small; a larger body goes to the SDK without a look."""
_UNKEYED = frozenset(
    {b"authorization", b"cookie", b"content-length", b"traceparent", b"tracestate", b"baggage"}
)
"""Headers left out of the audience: the token is there as the identity it resolves to, the
others are per request and never change an answer."""
_REQUEST_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_PARAM_KEYS = frozenset({"_meta", "cursor"})


@dataclass(frozen=True, slots=True)
class ListingRequest:
    request_id: int | str
    params: str
    """The params as canonical JSON: part of the audience."""


def listing_request(body: bytes) -> ListingRequest | None:
    """The request if the body is a plain tools/list the cache may answer, else None."""
    if b"tools/list" not in body:  # every other request, without parsing it a second time
        return None
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not set(payload) <= _REQUEST_KEYS:
        return None
    request_id, params = payload.get("id"), payload.get("params")
    if payload.get("jsonrpc") != "2.0" or payload.get("method") != "tools/list":
        return None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    if params is not None and not (isinstance(params, dict) and set(params) <= _PARAM_KEYS):
        return None
    return ListingRequest(request_id, json.dumps(params, sort_keys=True, separators=(",", ":")))


class ListingScopes:
    """Computes a listing request's audience and freshness, as the tools/list handler filters."""

    def __init__(self, identities: IdentityResolver, views: SessionViewStore, catalog: ToolCatalog) -> None:
        self._identities = identities
        self._views = views
        self._catalog = catalog

    async def of(self, scope: Scope, request: ListingRequest) -> tuple[ListingAudience, ListingFreshness]:
        """Raises whatever resolving the identity or reading the views raises."""
        http = Request(scope)
        identity = self._identities.resolve(http)
        named = session_from_headers(http)
        own, selection = None, None
        if named is not None:
            view = await self._views.get(identity.tenant, named)
            if view is not None and view.subject == identity.subject:
                own = named
                selection = tuple(view.tool_selection) if view.tool_selection else None
        headers = tuple(sorted((k.lower(), v) for k, v in scope["headers"] if k.lower() not in _UNKEYED))
        audience = ListingAudience(
            identity.tenant, identity.subject, tuple(sorted(identity.roles)), named, headers, request.params
        )
        versions = await self._catalog.versions(identity.tenant, own)
        return audience, ListingFreshness(own, selection, versions)


class _Capture:
    """Passes the SDK's answer through and keeps a copy of a 200 JSON one."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = int(message["status"])
            self._headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
        await self._send(message)

    def listing(self, request_id: int | str) -> CachedListing | None:
        """The answer as kept, or None unless it was a successful JSON result for this id."""
        headers = tuple((k, v) for k, v in self._headers if k.lower() != b"content-length")
        if self._status != 200 or (b"content-type", b"application/json") not in headers:
            return None
        try:
            answer = json.loads(b"".join(self._chunks))
        except ValueError:
            return None
        if not isinstance(answer, dict) or answer.get("id") != request_id or "result" not in answer:
            return None
        return CachedListing(headers, json.dumps(answer["result"], separators=(",", ":")).encode())


async def _read_small_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages as received and its body, None when larger than a listing's."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or size > MAX_LISTING_REQUEST_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class ListingShortcut:
    """ASGI: answers a cached tools/list itself, hands everything else to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        cache: ListingCache,
        scopes: ListingScopes,
        *,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self._app = app
        self._cache = cache
        self._scopes = scopes
        self._observe = observe
        """Records a served answer's duration (the SDK's request metric never sees it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        messages, body = await _read_small_body(receive)
        receive = _replaying(messages, receive)
        request = None if body is None else listing_request(body)
        if request is None:
            await self._app(scope, receive, send)
            return
        generation = self._cache.generation()
        try:
            audience, freshness = await self._scopes.of(scope, request)
        except Exception:  # boundary: the SDK answers this request and reports the failure itself
            log.debug("tools/list not keyed for the cache", exc_info=True)
            await self._app(scope, receive, send)
            return
        cached = self._cache.get(audience, freshness)
        if cached is None:
            capture = _Capture(send)
            await self._app(scope, receive, capture)
            kept = capture.listing(request.request_id)
            if kept is not None:
                self._cache.put(audience, freshness, kept, generation)
            return
        await _send_listing(cached, request.request_id, send)
        if self._observe is not None:
            self._observe(time.perf_counter() - started)


async def _send_listing(listing: CachedListing, request_id: int | str, send: Send) -> None:
    body = listing.body(request_id)
    headers = [*listing.headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
