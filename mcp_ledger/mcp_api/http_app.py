"""The API's HTTP application: auth, MCP transport sessions, the SDK server, metadata.

Layers, outermost first: /mcp's transport checks (Host, Origin, Accept, Content-Type, for
every method: transport/checks.py), the SDK's bearer authentication (JWT → request.user),
the gate answering 401 with WWW-Authenticate to anonymous requests on every route but the
public ones (auth/gate.py), then on /mcp our SessionLayer (Mcp-Session-Id, GET stream,
DELETE) and the SDK's stateless Streamable HTTP app with the requestState boundary. With
`no_auth` (loopback only) every request is the configured local user and no bearer layer
is installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.request_state import (
    AESGCMRequestStateCodec,
    InvalidRequestState,
    RequestStateBoundary,
    RequestStateSecurity,
    authenticated_principal,
    compact_json,
)
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from mcp_ledger.crypto.sealed import MAX_SEALED_BYTES
from mcp_ledger.mcp_api.auth.access_tokens import JwtVerifier, UnauthenticatedError
from mcp_ledger.mcp_api.auth.gate import AuthGate, unauthenticated_handler
from mcp_ledger.mcp_api.auth.identity import IdentityResolver
from mcp_ledger.mcp_api.transport.checks import LOOPBACK, TransportChecks, TransportPolicy
from mcp_ledger.mcp_api.transport.session_layer import SessionLayer

MCP_PATH = "/mcp"
PUBLIC_PATHS = ("/healthz", "/readyz")
"""Routes anyone may call (probes); the RFC 9728 metadata routes are public too. Every other
route of the app needs a verified token."""


class LimitedRequestStateCodec:
    """The SDK's AES-256-GCM requestState codec under our key, refusing tokens over 64 KB."""

    def __init__(self, key: bytes) -> None:
        self._codec = AESGCMRequestStateCodec([key])

    def seal(self, payload: bytes) -> str:
        token = self._codec.seal(payload)
        if len(token) > MAX_SEALED_BYTES:
            raise InvalidRequestState("request state over 64 KB")
        return token

    def unseal(self, token: str) -> bytes:
        if len(token) > MAX_SEALED_BYTES:
            raise InvalidRequestState("request state over 64 KB")
        return self._codec.unseal(token)


def tenant_bound_principal(token_principal: str, tenant: str) -> str:
    """The principal a requestState is bound to: the token's (client, issuer, subject) and the
    tenant, because a subject id names a person only within its tenant."""
    return compact_json([token_principal, tenant])


def _principal_of(identities: IdentityResolver) -> Callable[[ServerRequestContext[Any]], str | None]:
    def principal(ctx: ServerRequestContext[Any]) -> str | None:
        token_principal = authenticated_principal(ctx)
        if token_principal is None:  # --no-auth: one local identity, nothing to tell apart
            return None
        return tenant_bound_principal(token_principal, identities.resolve(ctx.request).tenant)

    return principal


def install_request_state(
    server: Server[Any], key: bytes, *, ttl: float, identities: IdentityResolver
) -> None:
    """Seal MCP 2026-07-28 requestState with our key, bound to the caller (tenant and subject,
    like sealed state) and an expiry."""
    security = RequestStateSecurity(
        codec=LimitedRequestStateCodec(key),
        ttl=ttl,
        audience="mcp-ledger",
        bind_principal=_principal_of(identities),
    )
    server.middleware.append(RequestStateBoundary(security, default_audience="mcp-ledger"))


@dataclass(frozen=True)
class AuthSetup:
    verifier: JwtVerifier
    resource_url: str
    authorization_servers: list[str]


def _transport_security(host: str) -> TransportSecuritySettings | None:
    if host not in LOOPBACK:
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def _mcp_app(
    server: Server[Any],
    host: str,
    session_layer: dict[str, Any],
    wrap_json: Callable[[ASGIApp], ASGIApp] | None = None,
) -> tuple[SessionLayer, tuple[StreamableHTTPSessionManager, StreamableHTTPSessionManager]]:
    security = _transport_security(host)
    manager = StreamableHTTPSessionManager(
        app=server, stateless=True, json_response=True, security_settings=security
    )
    streaming = StreamableHTTPSessionManager(
        app=server, stateless=True, json_response=False, security_settings=security
    )
    json_app: ASGIApp = StreamableHTTPASGIApp(manager)
    layer = SessionLayer(
        json_app if wrap_json is None else wrap_json(json_app),
        streaming_app=StreamableHTTPASGIApp(streaming),
        **session_layer,
    )
    return layer, (manager, streaming)


def _auth_layers(
    auth: AuthSetup, own_gates: Sequence[str]
) -> tuple[list[Middleware], list[BaseRoute], dict[Any, Any]]:
    """The bearer authentication, the gate in front of every non-public route, the RFC 9728
    metadata routes and the 401 handler."""
    resource = AnyHttpUrl(auth.resource_url)
    metadata_url = build_resource_metadata_url(resource)
    metadata = create_protected_resource_routes(
        resource_url=resource,
        authorization_servers=[AnyHttpUrl(url) for url in auth.authorization_servers],
        resource_name="mcp-ledger",
    )
    public = [*PUBLIC_PATHS, *(getattr(route, "path", "") for route in metadata)]
    middleware = [
        Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(auth.verifier)),
        Middleware(AuthContextMiddleware),
        Middleware(AuthGate, public_paths=public, metadata_url=metadata_url, own_gates=own_gates),
    ]
    return middleware, list(metadata), {UnauthenticatedError: unauthenticated_handler(metadata_url)}


def build_http_app(
    server: Server[Any],
    *,
    host: str,
    auth: AuthSetup | None,
    session_layer: dict[str, Any],
    routes: Sequence[BaseRoute],
    transport: TransportPolicy,
    own_gates: Sequence[str] = (),
    wrap_json: Callable[[ASGIApp], ASGIApp] | None = None,
) -> Starlette:
    """The Starlette app serving /mcp, the RFC 9728 metadata and `routes`.

    `session_layer` holds SessionLayer's keyword arguments except the wrapped apps. Every
    route but PUBLIC_PATHS and the metadata needs a verified token when `auth` is given;
    routes under `own_gates` (the console) authenticate every request themselves.
    `wrap_json` wraps the SDK's JSON transport (the tools/list cache, tools/listing_shortcut.py).
    """
    mcp_app, (manager, streaming) = _mcp_app(server, host, session_layer, wrap_json)
    # Outermost: /mcp's transport checks come before authentication and everything else.
    middleware = [Middleware(TransportChecks, policy=transport, paths=frozenset({MCP_PATH}))]
    all_routes: list[BaseRoute] = [Route(MCP_PATH, endpoint=mcp_app, methods=["GET", "POST", "DELETE"])]
    handlers: dict[Any, Any] = {}
    if auth is not None:
        auth_middleware, metadata, handlers = _auth_layers(auth, own_gates)
        middleware += auth_middleware
        all_routes += metadata
    all_routes.extend(routes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run(), streaming.run():
            yield

    return Starlette(routes=all_routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)
