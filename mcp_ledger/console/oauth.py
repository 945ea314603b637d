"""Sign-in with the authorization code flow and PKCE: the console as a public OAuth client.

The authorization server is the first of LEDGER_AUTHORIZATION_SERVERS; its endpoints come
from its RFC 8414 metadata. `start` makes a fresh `state` and `code_verifier` (S256
challenge) and keeps them in a short-lived HttpOnly cookie signed with the server's key
(SameSite=Lax: it must come back on the redirect from the authorization server, a
cross-site navigation). `callback` checks the state against that cookie (constant time),
exchanges the code with the verifier, and accepts the access token only if the gateway's own
verifier does, exactly as for an MCP request. Does not hold tokens anywhere but the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request

FLOW_COOKIE = "ledger_console_oauth"
FLOW_PATH = "/console/oauth"
FLOW_SECONDS = 600


class SignInError(Exception):
    """The sign-in cannot go on; the message is safe to show."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def challenge_of(verifier: str) -> str:
    """The S256 code challenge of a code verifier (RFC 7636)."""
    return _b64(hashlib.sha256(verifier.encode()).digest())


@dataclass(frozen=True, slots=True)
class Flow:
    state: str
    verifier: str
    expires: int


@dataclass
class OAuthClient:
    """The console's client of one authorization server."""

    server: str
    client_id: str
    resource: str
    key: bytes
    scope: str = ""
    _metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        """The server's RFC 8414 metadata (fetched once).

        Raises:
            SignInError: it cannot be fetched or names no endpoints.
        """
        if self._metadata is None:
            url = self.server.rstrip("/") + "/.well-known/oauth-authorization-server"
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(url)
                    response.raise_for_status()
                    found = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise SignInError("the authorization server's metadata could not be read") from error
            if not isinstance(found, dict) or not {"authorization_endpoint", "token_endpoint"} <= set(found):
                raise SignInError("the authorization server's metadata names no endpoints")
            self._metadata = found
        return self._metadata

    def new_flow(self) -> tuple[Flow, str]:
        """A fresh flow and the signed cookie value carrying it."""
        flow = Flow(secrets.token_urlsafe(32), secrets.token_urlsafe(64), int(time.time()) + FLOW_SECONDS)
        body = _b64(json.dumps([flow.state, flow.verifier, flow.expires]).encode())
        return flow, f"{body}.{self._sign(body)}"

    def flow_of(self, cookie: str | None) -> Flow | None:
        """The flow a cookie carries, None when it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        body, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            state, verifier, expires = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None
        if int(expires) < time.time():
            return None
        return Flow(str(state), str(verifier), int(expires))

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, b"console-oauth\0" + body.encode(), hashlib.sha256).digest())

    async def authorize_url(self, flow: Flow, redirect_uri: str) -> str:
        endpoint = str((await self.metadata())["authorization_endpoint"])
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": flow.state,
            "code_challenge": challenge_of(flow.verifier),
            "code_challenge_method": "S256",
            "resource": self.resource,
        }
        if self.scope:
            params["scope"] = self.scope
        return f"{endpoint}?{urlencode(params)}"

    async def exchange(self, request: Request, flow: Flow, redirect_uri: str) -> str:
        """The access token the callback's code is worth.

        Raises:
            SignInError: the state does not match, or the server refused the code.
        """
        state, code = request.query_params.get("state", ""), request.query_params.get("code", "")
        if not hmac.compare_digest(state.encode(), flow.state.encode()) or not code:
            raise SignInError("the sign-in answer does not belong to this browser's sign-in; start again")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": flow.verifier,
            "resource": self.resource,
        }
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.post(str((await self.metadata())["token_endpoint"]), data=form)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise SignInError("the authorization server did not answer the code exchange") from error
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            raise SignInError("the authorization server refused the code")
        return token
