"""README: "In production set `LEDGER_AUTH_JWKS_URL` …; the tenant the `tenant` claim
(`LEDGER_TENANT_CLAIM`), roles the `roles` claim (`LEDGER_ROLES_CLAIM`)".

The embedded gateway with auth on trusts a real JWKS server on loopback (starlette under
uvicorn, counting its fetches): a key it serves verifies, any other key does not, a new kid
makes the gateway fetch again at most every 30 s (the cache of `JwksKeys`), and a JWKS that
cannot be fetched refuses every token instead of letting anyone in. Custom claim names
change which claims are read, and the default names then count for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_ledger.mcp_api.auth.access_tokens import JwksKeys, JwtVerifier
from mcp_ledger.settings import Settings
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.loopback import serving
from tests.support.outages import stable_port
from tests.support.tokens import claims_for, signed

ISSUER = "https://issuer.example"
TENANT_CLAIM = "https://ledger.example/tenant"
ROLES_CLAIM = "https://ledger.example/roles"


@dataclass
class Jwks:
    """What the authorization server publishes, and how often it was asked."""

    url: str = ""
    keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    fetches: int = 0

    def rotate_to(self, kid: str) -> None:
        """Publish only a new key from now on."""
        self.keys = {kid: ec.generate_private_key(ec.SECP256R1())}

    def document(self) -> dict[str, Any]:
        jwks = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
        return {"keys": jwks}


@asynccontextmanager
async def jwks_server() -> AsyncIterator[Jwks]:
    """A JWKS endpoint on 127.0.0.1 and a free port, serving key "k1" until rotated."""
    jwks = Jwks()
    jwks.rotate_to("k1")

    async def serve(request: Request) -> Response:
        jwks.fetches += 1
        return JSONResponse(jwks.document())

    async with _serving(serve) as url:
        jwks.url = url
        yield jwks


def _trusting(tmp_path: Path, jwks_url: str) -> Settings:
    return embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"auth_jwks_url": jwks_url, "auth_issuer": ISSUER}
    )


def _token(settings: Settings, key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    return jwt.encode(claims_for(settings), key, algorithm="ES256", headers={"kid": kid})


async def _initialize(url: str, token: str) -> httpx.Response:
    headers = {**JSON_RPC_HEADERS, "authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, json=INITIALIZE, headers=headers)


async def _echo(url: str, token: str) -> str:
    async with mcp_client(url, mode="2026-07-28", token=token) as client:
        return str(structured(await client.call_tool("echo", {"text": "in"}))["text"])


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    async with jwks_server() as server:
        yield server


async def test_a_token_signed_by_a_key_of_the_jwks_is_accepted_and_any_other_key_is_refused(
    tmp_path: Path, jwks: Jwks
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    async with gateway(_trusting(tmp_path, jwks.url)) as gw:
        settings = gw.runtime.settings
        echoed = await _echo(gw.url, _token(settings, jwks.keys["k1"], "k1"))
        same_kid = await _initialize(gw.url, _token(settings, stranger, "k1"))
        unknown_kid = await _initialize(gw.url, _token(settings, stranger, "k-stranger"))
        no_kid = await _initialize(gw.url, jwt.encode(claims_for(settings), stranger, algorithm="ES256"))
    assert echoed == "in"
    assert (same_kid.status_code, unknown_kid.status_code, no_kid.status_code) == (401, 401, 401)
    assert 'error="invalid_token"' in same_kid.headers["www-authenticate"]
    # One fetch served every token: the unknown kid, asked again within 30 s, did not refetch.
    assert jwks.fetches == 1


async def test_a_new_kid_within_30_seconds_of_the_last_fetch_is_refused_without_fetching_again(
    tmp_path: Path, jwks: Jwks
) -> None:
    async with gateway(_trusting(tmp_path, jwks.url)) as gw:
        settings = gw.runtime.settings
        old_key = jwks.keys["k1"]
        before = await _echo(gw.url, _token(settings, old_key, "k1"))
        jwks.rotate_to("k2")
        rotated = [await _initialize(gw.url, _token(settings, jwks.keys["k2"], "k2")) for _ in range(5)]
        still_cached = await _echo(gw.url, _token(settings, old_key, "k1"))
    assert before == still_cached == "in"
    assert [response.status_code for response in rotated] == [401] * 5
    assert jwks.fetches == 1


async def test_after_the_refresh_interval_a_new_kid_is_fetched_once_and_the_retired_key_is_refused(
    jwks: Jwks,
) -> None:
    """The gateway's JwksKeys waits 30 s between refreshes on a miss; the same class with a
    short interval shows what happens after it, against the same real JWKS server."""
    settings = Settings(auth_issuer=ISSUER)
    verifier = JwtVerifier(
        JwksKeys(jwks.url, min_refresh=0.3),
        issuer=ISSUER,
        audience=settings.audience,
        algorithms=["ES256"],
    )
    old_key = jwks.keys["k1"]
    assert await verifier.verify_token(_token(settings, old_key, "k1")) is not None
    jwks.rotate_to("k2")
    new_token = _token(settings, jwks.keys["k2"], "k2")
    accepted, deadline = None, time.monotonic() + 5
    while accepted is None and time.monotonic() < deadline:
        accepted = await verifier.verify_token(new_token)
        await asyncio.sleep(0.05)
    retired = await verifier.verify_token(_token(settings, old_key, "k1"))
    assert accepted is not None
    assert accepted.subject == "alice"
    assert retired is None
    # Dozens of attempts with the unknown kid, one refetch: a stranger's kids cannot flood the server.
    assert jwks.fetches == 2


@pytest.mark.parametrize("outage", ["nothing_listens", "answers_500", "answers_garbage"])
async def test_a_jwks_that_cannot_be_fetched_refuses_every_token(tmp_path: Path, outage: str) -> None:
    async def broken(request: Request) -> Response:
        if outage == "answers_500":
            return JSONResponse({"error": "down"}, status_code=500)
        return Response("<html>maintenance</html>", media_type="text/html")

    key = ec.generate_private_key(ec.SECP256R1())
    async with contextlib.AsyncExitStack() as stack:
        url = f"http://127.0.0.1:{stable_port()}/jwks.json"  # nothing listens there
        if outage != "nothing_listens":
            url = await stack.enter_async_context(_serving(broken))
        gw = await stack.enter_async_context(gateway(_trusting(tmp_path, url)))
        settings = gw.runtime.settings
        refused = [await _initialize(gw.url, _token(settings, key, "k1")) for _ in range(2)]
        unsigned_kid = await _initialize(gw.url, jwt.encode(claims_for(settings), key, algorithm="ES256"))
        store = gw.runtime.store
        assert store is not None
        stored = await store.read_all()
    assert [response.status_code for response in [*refused, unsigned_kid]] == [401, 401, 401]
    assert stored == []


@asynccontextmanager
async def _serving(endpoint: Any) -> AsyncIterator[str]:
    """`endpoint` at /jwks.json on a free loopback port; yields its URL."""
    async with serving(Starlette(routes=[Route("/jwks.json", endpoint)])) as base:
        yield f"{base}/jwks.json"


def _custom(settings: Settings, custom_tenant: str, custom_roles: Any = None, **default_named: Any) -> str:
    """A dev-key token with the tenant (and roles) under the custom claim names, plus any
    claims under the default names."""
    claims = {**claims_for(settings, tenant=None, roles=None), **default_named, TENANT_CLAIM: custom_tenant}
    if custom_roles is not None:
        claims[ROLES_CLAIM] = custom_roles
    return signed(settings, claims)


@pytest.fixture
async def custom_claims(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"tenant_claim": TENANT_CLAIM, "roles_claim": ROLES_CLAIM}
    )
    async with gateway(settings) as running_gateway:
        yield running_gateway


async def test_custom_tenant_and_roles_claims_name_the_caller(custom_claims: RunningGateway) -> None:
    settings = custom_claims.runtime.settings
    # Both names present: the configured claim is the tenant, the default one is ignored.
    token = _custom(settings, "globex", "viewer operator", tenant="acme", roles=[])
    async with mcp_client(custom_claims.url, token=token) as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
        sealed = await client.call_tool("state_seal", {"state": {"n": 1}})
    view = await custom_claims.runtime.views.get("globex", session_id)
    assert view is not None
    assert view.subject == "alice"
    assert await custom_claims.runtime.views.get("acme", session_id) is None
    assert not sealed.is_error, text_of(sealed)


async def test_with_custom_claim_names_the_default_names_count_for_nothing(
    custom_claims: RunningGateway,
) -> None:
    settings = custom_claims.runtime.settings
    defaults_only = await _initialize(
        custom_claims.url, signed(settings, claims_for(settings, tenant="acme", roles=["admin"]))
    )
    async with mcp_client(custom_claims.url, token=_custom(settings, "globex", roles=["admin"])) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        denied = await client.call_tool("state_seal", {"state": {"n": 1}})
    assert defaults_only.status_code == 401
    assert "state_seal" not in names
    assert "echo" in names
    assert denied.is_error
    assert text_of(denied).startswith("forbidden")
