"""RFC 8693 token exchange to upstreams: a per-user upstream token for each subject.

When a worker calls a `token_exchange` upstream for a subject, it posts to the entry's
token endpoint (under the same egress rules as upstreams, no redirects, HTTP Basic client
authentication with the entry's sealed client secret) the grant
`urn:ietf:params:oauth:grant-type:token-exchange` with a gateway-signed assertion naming
tenant and subject as the subject token (assertions.py: never the agent's own token), the
requested token type, `audience`, `resource` and `scope`. The token it gets is sent to the
upstream as the bearer. Tokens are kept in this worker's memory per (tenant, subject,
registry, server, endpoint, client, audience, resource, scope), until 30 s before they
expire, never shared between subjects, forgotten when the subject is erased (a SubjectCache
of the erasure barrier), and exchanged again once when the upstream answers 401. A refused
exchange is one clear error naming the upstream and the OAuth error code, never the
authorization server's body.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx2

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.consumers.upstreams.auth.assertions import SUBJECT_TOKEN_TYPE, AssertionSigner
from mcp_ledger.consumers.upstreams.connection import EgressPolicy, UpstreamTarget, checked_url

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
EARLY_S = 30.0
"""Exchange again this long before a token expires."""
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
    }
)
"""The error codes of RFC 6749 5.2 and RFC 8693 2.2.2: the only part of a refusal repeated."""

ExchangeKey = tuple[str, ...]


def _lifetime(body: dict[str, Any]) -> float:
    expires = body.get("expires_in", 300)
    seconds = float(expires) if isinstance(expires, int | float) and expires > 0 else 300.0
    return seconds - EARLY_S if seconds > 2 * EARLY_S else seconds / 2


def _refusal(target: UpstreamTarget, response: httpx2.Response) -> ToolExecutionError:
    code = None
    try:
        body = response.json()
        code = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        pass
    reason = code if code in OAUTH_ERRORS else f"HTTP {response.status_code}"
    return ToolExecutionError(
        "upstream_auth",
        f"upstream {target.server.name!r}: the authorization server refused the token exchange "
        f"for this user ({reason})",
    )


class ExchangedTokens:
    """Upstream tokens obtained by token exchange, per subject and entry."""

    def __init__(
        self, policy: EgressPolicy, signer: AssertionSigner, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = policy
        self._signer = signer
        self._clock = clock
        self._tokens: dict[ExchangeKey, tuple[str, float]] = {}
        self._caching = True
        self._generation = 0
        self.exchanges = 0
        """How many exchanges this worker made (tests and health)."""

    @staticmethod
    def key(target: UpstreamTarget) -> ExchangeKey:
        auth = target.server.auth
        return (
            target.tenant,
            target.subject or "",
            target.scope or "",
            target.server.name,
            auth.token_url or "",
            auth.client_id or "",
            auth.audience or "",
            auth.resource or "",
            auth.scope or "",
        )

    def __len__(self) -> int:
        return len(self._tokens)

    def forget_subject(self, tenant: str, subject: str) -> None:
        """The erasure barrier: drop the subject's tokens, keep none exchanged meanwhile."""
        self._generation += 1
        for key in [k for k in self._tokens if k[0] == tenant and k[1] == subject]:
            del self._tokens[key]

    def set_caching(self, enabled: bool) -> None:
        self._caching = enabled
        self._generation += 1
        if not enabled:
            self._tokens.clear()

    async def token(self, target: UpstreamTarget, *, refresh: bool = False) -> str:
        """A valid upstream token for the target's subject.

        Raises:
            ToolExecutionError: no subject, endpoint or secret, refused by policy, or the
                authorization server refused the exchange.
        """
        key = self.key(target)
        cached = self._tokens.get(key)
        if cached is not None and not refresh and cached[1] > self._clock():
            return cached[0]
        generation = self._generation
        token, lifetime = await self._exchange(target)
        if self._caching and generation == self._generation:
            now = self._clock()
            # Expired tokens are dropped as new ones come: nothing else would remove a subject's
            # token that is never asked for again, and the cache would grow with every subject.
            for stale in [k for k, (_, until) in self._tokens.items() if until <= now]:
                del self._tokens[stale]
            self._tokens[key] = (token, now + lifetime)
        return token

    async def auth(self, target: UpstreamTarget) -> httpx2.Auth:
        """The request auth of a connection for the target's subject, its token exchanged now.

        Raises:
            ToolExecutionError: as token().
        """
        await self.token(target)
        return TokenExchangeAuth(self, target)

    async def _exchange(self, target: UpstreamTarget) -> tuple[str, float]:
        auth, name = target.server.auth, target.server.name
        if not (auth.token_url and auth.client_id and target.secret):
            raise ToolExecutionError(
                "upstream_auth", f"upstream {name!r}: token exchange needs token_url, client_id and a secret"
            )
        if not target.subject:
            raise ToolExecutionError("upstream_auth", f"upstream {name!r}: token exchange needs a subject")
        url, headers = await checked_url(auth.token_url, self._policy)
        self.exchanges += 1
        form = {
            "grant_type": GRANT_TYPE,
            "subject_token": self._signer.assertion(target.tenant, target.subject, auth.token_url),
            "subject_token_type": SUBJECT_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            **{k: v for k, v in (("audience", auth.audience), ("resource", auth.resource)) if v},
            **({"scope": auth.scope} if auth.scope else {}),
        }
        async with httpx2.AsyncClient(timeout=10.0, follow_redirects=False, headers=headers) as http:
            try:
                response = await http.post(url, data=form, auth=(auth.client_id, target.secret))
            except httpx2.HTTPError as error:
                raise ToolExecutionError(
                    "upstream_auth",
                    f"upstream {name!r}: the token endpoint is unreachable ({type(error).__name__})",
                ) from None
        if response.status_code != 200:
            raise _refusal(target, response)
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or "\n" in token:
            raise ToolExecutionError(
                "upstream_auth", f"upstream {name!r}: the token exchange gave no access_token"
            )
        return token, _lifetime(body)


class TokenExchangeAuth(httpx2.Auth):
    """The subject's exchanged token on every request to the upstream; one exchange on 401.
    A session's closing DELETE reuses the token the connection last sent and never exchanges:
    closing an erased subject's session (the erasure barrier) must not mint them a token."""

    def __init__(self, tokens: ExchangedTokens, target: UpstreamTarget) -> None:
        self._tokens = tokens
        self._target = target
        self._last: str | None = None

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        closing = request.method == "DELETE" and self._last is not None
        self._last = self._last if closing else await self._tokens.token(self._target)
        request.headers["authorization"] = f"Bearer {self._last}"
        response = yield request
        if response.status_code == 401 and not closing:
            self._last = await self._tokens.token(self._target, refresh=True)
            request.headers["authorization"] = f"Bearer {self._last}"
            yield request
