"""Who is looking at the console: the access token in its cookie, verified like an MCP call's.

The console is an OAuth 2.1 client of the same authorization server as MCP clients, and the
token it holds is checked by the same verifier (signature, issuer, audience, expiry, tenant
and roles claims). It lives in an HttpOnly, SameSite=Strict cookie scoped to /console, never
in script-readable storage; the cookie is Secure whenever the request is not plain HTTP to a
loopback address (a browser keeps no Secure cookie from plain http, and off loopback a token
must never travel in clear). With --no-auth (loopback only) everyone is the local user and
nothing is stored. Roles decide the rest: `auditor` and `admin` read, `admin` also acts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from mcp_ledger.console.security import csrf_token
from mcp_ledger.mcp_api.auth.access_tokens import JwtVerifier, roles_of
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.transport.checks import LOOPBACK

TOKEN_COOKIE = "ledger_console"
PRE_COOKIE = "ledger_console_pre"
"""A random value binding the sign-in form's CSRF token to a browser before anyone signs in."""
COOKIE_PATH = "/console"
READ_ROLES = frozenset({"auditor", "admin"})
ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in caller: their identity and the CSRF token of their session."""

    identity: Identity
    csrf: str
    local: bool = False

    @property
    def may_read(self) -> bool:
        return bool(READ_ROLES & set(self.identity.roles))

    @property
    def may_act(self) -> bool:
        return ADMIN_ROLE in self.identity.roles


def secure_cookies(request: Request) -> bool:
    """Whether cookies set for this request are Secure (all but plain HTTP to loopback)."""
    host = request.url.hostname or ""
    return request.url.scheme == "https" or host.strip("[]") not in {*LOOPBACK, "localhost", "::1"}


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=secure_cookies(request),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, secure=secure_cookies(request), httponly=True, samesite="strict"
    )


class ConsoleAccess:
    """Resolves the console's caller from the request's cookie."""

    def __init__(
        self,
        verifier: JwtVerifier | None,
        *,
        key: bytes,
        local: Identity | None = None,
        tenant_claim: str = "tenant",
        roles_claim: str = "roles",
    ) -> None:
        self._verifier = verifier
        self._local = local
        self._key = key
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim

    @property
    def local(self) -> bool:
        """Whether everyone is the local user (--no-auth): there is nothing to sign in to."""
        return self._local is not None

    def csrf_for(self, session: str) -> str:
        return csrf_token(self._key, session)

    @property
    def key(self) -> bytes:
        return self._key

    async def verify(self, token: str) -> tuple[Identity, int] | None:
        """The identity a token proves and its expiry (epoch seconds); None if it is refused."""
        if self._verifier is None or not token or len(token) > 16_384:
            return None
        access = await self._verifier.verify_token(token)
        if access is None or access.claims is None or access.subject is None:
            return None
        claims = access.claims
        identity = Identity(
            tenant=str(claims[self._tenant_claim]),
            subject=str(access.subject),
            roles=roles_of(claims, self._roles_claim),
        )
        return identity, int(access.expires_at or time.time())

    async def viewer(self, request: Request) -> Viewer | None:
        """The caller, or None when nobody (or a refused token) is signed in."""
        if self._local is not None:
            session = request.cookies.get(PRE_COOKIE) or ""
            return Viewer(self._local, self.csrf_for(session) if session else "", local=True)
        token = request.cookies.get(TOKEN_COOKIE)
        if token is None:
            return None
        verified = await self.verify(token)
        if verified is None:
            return None
        return Viewer(verified[0], self.csrf_for(token))


def new_pre_session() -> str:
    return secrets.token_urlsafe(32)
