"""The authentication gate of the HTTP app: every route needs a verified token unless it is
public by name.

Protected by default: a route added to the app later is behind the gate without anyone
remembering to put it there, and an anonymous request to it gets 401 with a
WWW-Authenticate header naming the RFC 9728 metadata (the SDK's bearer error), never a
handler's exception. The public paths are the few an unauthenticated client or a probe
needs (liveness, readiness, the protected-resource metadata). Roles are the handlers'
business (403); this gate only asks "who is calling".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


def bearer_challenge(metadata_url: AnyHttpUrl, description: str = "Authentication required") -> str:
    """The WWW-Authenticate value of a 401, as the SDK's bearer middleware writes it."""
    return (
        f'Bearer error="invalid_token", error_description="{description}", resource_metadata="{metadata_url}"'
    )


class AuthGate:
    """ASGI middleware (after the bearer authentication) refusing anonymous requests."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_paths: Iterable[str],
        metadata_url: AnyHttpUrl,
        own_gates: Iterable[str] = (),
    ) -> None:
        self._app = app
        self._public = frozenset(public_paths)
        # Apps mounted under these prefixes authenticate every request themselves (the console:
        # its token is in a cookie, not an Authorization header) and refuse anonymous ones.
        self._own_gates = tuple(prefix.rstrip("/") for prefix in own_gates)
        self._refuse = RequireAuthMiddleware(app, [], metadata_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        public = scope["type"] != "http" or path in self._public or self._gated_elsewhere(path)
        if public or isinstance(scope.get("user"), AuthenticatedUser):
            await self._app(scope, receive, send)
        else:
            await self._refuse(scope, receive, send)

    def _gated_elsewhere(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self._own_gates)


def unauthenticated_handler(metadata_url: AnyHttpUrl) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A Starlette exception handler answering 401 when a handler found no identity (a
    route the gate lets through must still never turn that into a 500)."""

    async def unauthenticated(request: Request, error: Exception) -> Response:
        headers = {"www-authenticate": bearer_challenge(metadata_url)}
        body = {"error": "invalid_token", "error_description": "Authentication required"}
        return JSONResponse(body, status_code=401, headers=headers)

    return unauthenticated
