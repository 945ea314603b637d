"""OAuth 2.1 client credentials to upstreams: the gateway's own token for a server, cached
until shortly before it expires, refreshed once when the upstream answers 401.

The token endpoint is reached under the same egress rules as upstreams (allowlisted,
resolved and checked, plain http pinned), without redirects, with HTTP Basic client
authentication (RFC 6749 2.3.1); the client secret is the entry's sealed secret. Tokens are
kept in this worker's memory only, per (tenant, registry, server, client, endpoint).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx2

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.consumers.upstreams.connection import EgressPolicy, UpstreamTarget, checked_url

EARLY_S = 30.0
"""Refresh a token this long before its expiry."""

TokenKey = tuple[str, str | None, str, str, str]


class ClientCredentialsTokens:
    """Access tokens of the client-credentials grant, by upstream entry."""

    def __init__(self, policy: EgressPolicy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._tokens: dict[TokenKey, tuple[str, float]] = {}

    @staticmethod
    def _key(target: UpstreamTarget) -> TokenKey:
        auth = target.server.auth
        return (target.tenant, target.scope, target.server.name, auth.client_id or "", auth.token_url or "")

    async def token(self, target: UpstreamTarget, *, refresh: bool = False) -> str:
        """A valid access token for the entry.

        Raises:
            ToolExecutionError: no endpoint or secret, refused by policy, or the endpoint refused.
        """
        key = self._key(target)
        cached = self._tokens.get(key)
        if cached is not None and not refresh and cached[1] > self._clock():
            return cached[0]
        token, lifetime = await self._fetch(target)
        self._tokens[key] = (token, self._clock() + max(0.0, lifetime - EARLY_S))
        return token

    async def _fetch(self, target: UpstreamTarget) -> tuple[str, float]:
        auth = target.server.auth
        if not (auth.token_url and auth.client_id and target.secret):
            raise ToolExecutionError(
                "upstream_auth", "client credentials need token_url, client_id and a secret"
            )
        url, headers = await checked_url(auth.token_url, self._policy)
        form = {"grant_type": "client_credentials", **({"scope": auth.scope} if auth.scope else {})}
        async with httpx2.AsyncClient(timeout=10.0, follow_redirects=False, headers=headers) as http:
            try:
                response = await http.post(url, data=form, auth=(auth.client_id, target.secret))
            except httpx2.HTTPError as error:
                raise ToolExecutionError("upstream_auth", f"token endpoint unreachable: {error!r}") from None
        if response.status_code != 200:
            raise ToolExecutionError(
                "upstream_auth", f"the token endpoint answered HTTP {response.status_code}"
            )
        body: Any = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ToolExecutionError("upstream_auth", "the token endpoint answered no access_token")
        expires = body.get("expires_in", 300)
        return token, float(expires) if isinstance(expires, int | float) else 300.0


class ClientCredentialsAuth(httpx2.Auth):
    """Bearer token of the client-credentials grant on every request; one refresh on 401."""

    def __init__(self, tokens: ClientCredentialsTokens, target: UpstreamTarget) -> None:
        self._tokens = tokens
        self._target = target

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["authorization"] = f"Bearer {await self._tokens.token(self._target)}"
        response = yield request
        if response.status_code == 401:
            fresh = await self._tokens.token(self._target, refresh=True)
            request.headers["authorization"] = f"Bearer {fresh}"
            yield request
