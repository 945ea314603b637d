"""A small RFC 8693 authorization server for federation tests: the token-exchange grant at
POST /token, uvicorn on a free loopback port.

It checks what a real one would: HTTP Basic client authentication, the grant and token
types, the subject token (a JWT signed by the gateway's assertion key, for this endpoint,
from the expected issuer, unexpired, naming the client's tenant) and the requested
audience. It issues opaque per-user tokens, kept in `users` (token -> "tenant/subject"),
which the fixture upstream accepts as its bearers; subjects in `refused` get an
`invalid_grant` with a description the gateway must not repeat.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from jwt import PyJWK
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.embedded import _QuietServer

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"
LEAKY_DESCRIPTION = "internal detail: account 4711 locked by rule R-9"


@dataclass
class ExchangeServer:
    client_id: str
    client_secret: str
    tenant: str
    audience: str
    issuer: str
    jwks: dict[str, Any]
    url: str = ""
    expires_in: int = 3600
    users: dict[str, str] = field(default_factory=dict)
    """Issued token -> the user it was issued for ("tenant/subject")."""
    subject_tokens: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    exchanges: int = 0

    def _error(self, code: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": code, "error_description": LEAKY_DESCRIPTION}, status_code=status)

    def _subject(self, token: str) -> dict[str, Any] | None:
        key = PyJWK(self.jwks["keys"][0]).key
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.url,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.PyJWTError:
            return None
        return claims if claims.get("tenant") == self.tenant else None

    async def token(self, request: Request) -> JSONResponse:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return self._error("invalid_client", 401)
        form = await request.form()
        if form.get("grant_type") != GRANT:
            return self._error("unsupported_grant_type")
        subject_token = str(form.get("subject_token", ""))
        self.subject_tokens.append(subject_token)
        if form.get("subject_token_type") != JWT_TYPE or form.get("requested_token_type") != ACCESS_TYPE:
            return self._error("invalid_request")
        claims = self._subject(subject_token)
        if claims is None:
            return self._error("invalid_grant")
        if form.get("audience") != self.audience:
            return self._error("invalid_target")
        if claims["sub"] in self.refused:
            return self._error("invalid_grant")
        self.exchanges += 1
        issued = f"xt-{secrets.token_hex(8)}"
        self.users[issued] = f"{claims['tenant']}/{claims['sub']}"
        return JSONResponse(
            {
                "access_token": issued,
                "issued_token_type": ACCESS_TYPE,
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
        )


@asynccontextmanager
async def exchange_server(
    *, tenant: str, audience: str, issuer: str, jwks: dict[str, Any], client_secret: str
) -> AsyncIterator[ExchangeServer]:
    """The authorization server on a free port until the block ends."""
    server = ExchangeServer("gateway", client_secret, tenant, audience, issuer, jwks)
    app = Starlette(routes=[Route("/token", server.token, methods=["POST"])])
    running = _QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(running.serve())
    async with asyncio.timeout(10):
        while not running.started:
            await asyncio.sleep(0.01)
    server.url = f"http://127.0.0.1:{running.servers[0].sockets[0].getsockname()[1]}/token"
    try:
        yield server
    finally:
        running.should_exit = True
        await asyncio.wait_for(task, timeout=10)
