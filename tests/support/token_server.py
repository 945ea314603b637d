"""A small OAuth 2.1 token endpoint for federation tests: POST /token on a free loopback port,
HTTP Basic client authentication, and the grant each test needs.

- The client-credentials grant (`token_server`): tokens are `token-N`, counted in `issued`.
- The RFC 8693 token-exchange grant (`exchange_server`). It checks what a real server
  would: the grant and token types, the subject token (a JWT signed by the gateway's
  assertion key, for this endpoint, from the expected issuer, unexpired, naming the client's
  tenant) and the requested audience. It issues opaque per-user tokens, kept in `users`
  (token -> "tenant/subject"), which the fixture upstream accepts as its bearers; subjects in
  `refused` get an `invalid_grant`.

Every refusal carries LEAKY_DESCRIPTION, a description the gateway must not repeat.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.loopback import serving

CLIENT_CREDENTIALS = "client_credentials"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"
LEAKY_DESCRIPTION = "internal detail: account 4711 locked by rule R-9"


@dataclass(frozen=True)
class ExchangeTerms:
    """What a token exchange must name: the client's tenant, the audience, and the gateway's
    assertion issuer and keys."""

    tenant: str
    audience: str
    issuer: str
    jwks: dict[str, Any]


@dataclass
class TokenServer:
    client_id: str
    client_secret: str
    exchange: ExchangeTerms | None = None
    """None: only the client-credentials grant is served."""
    url: str = ""
    expires_in: int = 3600
    issued: int = 0
    """Client-credentials tokens issued."""
    users: dict[str, str] = field(default_factory=dict)
    """Exchanged token -> the user it was issued for ("tenant/subject")."""
    subject_tokens: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    exchanges: int = 0

    def auth(self, **changes: Any) -> dict[str, Any]:
        """The `auth` of a register_server entry whose tokens come from here."""
        if self.exchange is None:
            kind: dict[str, Any] = {"kind": "client_credentials"}
        else:
            kind = {"kind": "token_exchange", "audience": self.exchange.audience}
        entry = {"token_url": self.url, "client_id": self.client_id, "secret": self.client_secret}
        return {**kind, **entry, **changes}

    async def token(self, request: Request) -> JSONResponse:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _error("invalid_client", 401)
        form = await request.form()
        grant = form.get("grant_type")
        if grant == CLIENT_CREDENTIALS and self.exchange is None:
            self.issued += 1
            return _issued(f"token-{self.issued}", self.expires_in)
        if grant == EXCHANGE and self.exchange is not None:
            return self._exchanged(form, self.exchange)
        return _error("unsupported_grant_type")

    def _exchanged(self, form: FormData, terms: ExchangeTerms) -> JSONResponse:
        subject_token = str(form.get("subject_token", ""))
        self.subject_tokens.append(subject_token)
        if form.get("subject_token_type") != JWT_TYPE or form.get("requested_token_type") != ACCESS_TYPE:
            return _error("invalid_request")
        claims = self._subject(subject_token, terms)
        if claims is None:
            return _error("invalid_grant")
        if form.get("audience") != terms.audience:
            return _error("invalid_target")
        if claims["sub"] in self.refused:
            return _error("invalid_grant")
        self.exchanges += 1
        issued = f"xt-{secrets.token_hex(8)}"
        self.users[issued] = f"{claims['tenant']}/{claims['sub']}"
        return _issued(issued, self.expires_in, issued_token_type=ACCESS_TYPE)

    def _subject(self, token: str, terms: ExchangeTerms) -> dict[str, Any] | None:
        key = PyJWK(terms.jwks["keys"][0]).key
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["ES256"],
                audience=self.url,
                issuer=terms.issuer,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.PyJWTError:
            return None
        return claims if claims.get("tenant") == terms.tenant else None


def _error(code: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": LEAKY_DESCRIPTION}, status_code=status)


def _issued(access_token: str, expires_in: int, **extra: str) -> JSONResponse:
    return JSONResponse(
        {"access_token": access_token, **extra, "token_type": "Bearer", "expires_in": expires_in}
    )


@asynccontextmanager
async def _running(server: TokenServer) -> AsyncIterator[TokenServer]:
    async with serving(Starlette(routes=[Route("/token", server.token, methods=["POST"])])) as base:
        server.url = f"{base}/token"
        yield server


@asynccontextmanager
async def token_server(client_id: str, client_secret: str) -> AsyncIterator[TokenServer]:
    """A client-credentials token endpoint on a free port until the block ends."""
    async with _running(TokenServer(client_id, client_secret)) as server:
        yield server


@asynccontextmanager
async def exchange_server(
    *, tenant: str, audience: str, issuer: str, jwks: dict[str, Any], client_secret: str
) -> AsyncIterator[TokenServer]:
    """A token-exchange endpoint for the client "gateway" on a free port until the block ends."""
    terms = ExchangeTerms(tenant, audience, issuer, jwks)
    async with _running(TokenServer("gateway", client_secret, terms)) as server:
        yield server
