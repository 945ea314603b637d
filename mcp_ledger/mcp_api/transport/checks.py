"""The transport checks of /mcp: Host, Origin, Accept and Content-Type, before anything else.

Every method (POST, GET, DELETE) passes them before authentication, before a session is
looked up, opened or closed, and before the SDK sees the request, so a refused request has
no effect at all. The SDK checks some of this again later; by then nothing may have
happened that a refusal would have to undo (an `initialize` once recorded a session first).

Host is checked against an allowlist when one applies (always on loopback, where DNS
rebinding is the threat; elsewhere when configured); Origin, when a browser sends one,
always: the public URL's origin, loopback origins on loopback, and the configured ones.
Patterns are exact values or `base:*` for any port. Deliberately not here: tokens
(auth/), session ownership (session_layer.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.streamable_http import check_accept_headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
_LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")


def _matches(value: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if value == pattern or (pattern.endswith(":*") and value.startswith(pattern[:-1])):
            return True
    return False


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as browsers send it in Origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class TransportPolicy:
    """Which Host and Origin values /mcp accepts; `hosts` None: any Host."""

    hosts: tuple[str, ...] | None
    origins: tuple[str, ...]

    @classmethod
    def for_server(
        cls,
        bind_host: str,
        public_url: str,
        *,
        extra_hosts: Sequence[str] = (),
        extra_origins: Sequence[str] = (),
    ) -> TransportPolicy:
        """The policy of a server listening on `bind_host`, reached at `public_url`."""
        origins = (origin_of(public_url), *extra_origins)
        public_host = urlsplit(public_url).netloc
        if bind_host in LOOPBACK:
            return cls((*_LOOPBACK_HOSTS, public_host, *extra_hosts), (*_LOOPBACK_ORIGINS, *origins))
        return cls((public_host, *extra_hosts) if extra_hosts else None, origins)

    def problem(self, request: Request) -> tuple[int, str] | None:
        """(HTTP status, reason) when the request must be refused, else None."""
        host = request.headers.get("host", "")
        if self.hosts is not None and not _matches(host, self.hosts):
            return 421, "Host header not allowed"
        origin = request.headers.get("origin")
        if origin is not None and not _matches(origin, self.origins):
            return 403, "Origin not allowed"
        has_json, has_sse = check_accept_headers(request)
        method = request.method
        if method == "POST":
            # As strict as the SDK's two checks together (it compares case-sensitively), so
            # nothing that passes here is refused by the SDK after a session was opened.
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if content_type != "application/json":
                return 415, "Content-Type must be application/json"
            if not has_json:
                return 406, "Accept must include application/json"
        elif method == "GET" and not has_sse:
            return 406, "Accept must include text/event-stream"
        return None


class TransportChecks:
    """ASGI wrapper refusing what `policy` refuses on `paths`, before the app sees anything."""

    def __init__(self, app: ASGIApp, *, policy: TransportPolicy, paths: frozenset[str]) -> None:
        self._app = app
        self._policy = policy
        self._paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self._paths:
            await self._app(scope, receive, send)
            return
        refusal = self._policy.problem(Request(scope))
        if refusal is None:
            await self._app(scope, receive, send)
            return
        status, reason = refusal
        error = {"code": -32600, "message": reason}
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
