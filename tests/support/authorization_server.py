"""A small OAuth 2.1 authorization server for tests: a real HTTP server on a free loopback port.

It serves RFC 8414 metadata, `/authorize` (the authorization code flow with PKCE, S256 only:
it signs in whoever the test put in `user`, as a real server would after its login page),
`/token` (one-time codes bound to the client, the redirect URI and the code challenge) and
`/jwks`, and signs access tokens with a TokenIssuer whose issuer is its own URL. A gateway
configured with LEDGER_AUTH_JWKS_URL, LEDGER_AUTH_ISSUER and LEDGER_AUTHORIZATION_SERVERS
naming it verifies those tokens like production ones.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.issuer import TokenIssuer
from tests.support.loopback import serving


@dataclass
class SignedInUser:
    tenant: str
    subject: str
    roles: tuple[str, ...]


@dataclass
class AuthorizationServer:
    """The server's state: its issuer, registered client, who signs in, and issued codes."""

    audience: str
    client_id: str = "mcp-ledger-console"
    redirect_uris: set[str] = field(default_factory=set)
    user: SignedInUser | None = None
    url: str = ""
    issuer: TokenIssuer | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self._metadata),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/jwks", self._jwks),
            ]
        )

    async def _metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
            }
        )

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("redirect_uri") not in self.redirect_uris:
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if not q.get("code_challenge") or self.user is None:
            return JSONResponse({"error": "access_denied"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "client_id": q["client_id"],
            "redirect_uri": q["redirect_uri"],
            "challenge": q["code_challenge"],
            "user": self.user,
            "expires": time.time() + 60,
        }
        target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        return RedirectResponse(target, status_code=302)

    async def _token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or grant["expires"] < time.time()
            or form.get("client_id") != grant["client_id"]
            or form.get("redirect_uri") != grant["redirect_uri"]
            or challenge != grant["challenge"]
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        assert self.issuer is not None
        user: SignedInUser = grant["user"]
        token = self.issuer.token(user.tenant, user.subject, user.roles)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 900})

    async def _jwks(self, request: Request) -> Response:
        assert self.issuer is not None
        jwk = ECAlgorithm.to_jwk(self.issuer.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": self.issuer.kid, "use": "sig", "alg": "ES256"}]})


@asynccontextmanager
async def authorization_server(audience: str) -> AsyncIterator[AuthorizationServer]:
    """Run the server on a free loopback port inside the test's event loop."""
    state = AuthorizationServer(audience=audience)
    async with serving(state.app()) as base:
        state.url = base
        state.issuer = TokenIssuer(issuer=state.url, audience=audience)
        yield state
