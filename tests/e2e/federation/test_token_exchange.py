"""RFC 8693 token exchange to an upstream behind the embedded gateway (auth on): a real
authorization server (tests/support/exchange_server.py) checks the gateway's client
credentials, its signed subject assertion and the audience, and issues per-user tokens the
fixture upstream requires. Each subject reaches the upstream as itself, the agent's own
token reaches neither the upstream nor the authorization server, a refused exchange is a
clear error, and tokens are cached per subject and exchanged again on 401."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.wiring.upstreams import assertion_signer
from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway
from tests.support.files import files_containing
from tests.support.token_server import LEAKY_DESCRIPTION, TokenServer, exchange_server
from tests.support.upstream import RunningUpstream

AUDIENCE = "fixture-api"
SECRET = f"exchange-secret-{uuid.uuid4().hex}"


@pytest.fixture
async def authorization(secured: RunningGateway, upstream: RunningUpstream) -> AsyncIterator[TokenServer]:
    signer = assertion_signer(secured.runtime.settings)
    async with exchange_server(
        tenant="acme", audience=AUDIENCE, issuer=signer.issuer, jwks=signer.jwks(), client_secret=SECRET
    ) as server:
        upstream.state.bearers = server.users  # the upstream accepts exactly what the AS issued
        yield server


def _auth(server: TokenServer, **changes: Any) -> dict[str, Any]:
    return server.auth(scope="tools.call", **changes)


async def _whoami(gw: RunningGateway, subject: str) -> tuple[str, str, bool]:
    """(what the upstream says, the agent's token, whether it was an error)."""
    agent_token = token(gw, sub=subject, roles=("viewer",))
    async with mcp_client(gw.url, token=agent_token) as client:
        result = await client.call_tool("fx_whoami", {})
    return text_of(result), agent_token, bool(result.is_error)


async def test_two_subjects_reach_the_upstream_each_as_themselves_and_never_with_their_own_token(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer, tmp_path: Path
) -> None:
    structured(await register(secured, upstream, auth=_auth(authorization)))
    alice, alice_token, _ = await _whoami(secured, "alice")
    again, _, _ = await _whoami(secured, "alice")
    bob, bob_token, _ = await _whoami(secured, "bob")
    assert (alice, again, bob) == ("acme/alice", "acme/alice", "acme/bob")
    seen = upstream.state.authorizations
    assert seen
    assert all(value.removeprefix("Bearer ") in authorization.users for value in seen)
    for agent_token in (alice_token, bob_token, token(secured)):
        assert not any(agent_token in value for value in seen)
        assert agent_token not in authorization.subject_tokens
    # Registration (alice, the admin) exchanged once; alice's calls reused it; bob got his own.
    assert authorization.exchanges == 2
    assert files_containing(tmp_path, SECRET) == []


async def test_a_refused_exchange_is_a_clear_tool_error_naming_the_upstream_not_the_server_s_body(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    structured(await register(secured, upstream, auth=_auth(authorization)))
    authorization.refused.add("mallory")
    text, _, is_error = await _whoami(secured, "mallory")
    assert is_error
    assert "upstream 'fixture': the authorization server refused the token exchange" in text
    assert "(invalid_grant)" in text
    assert LEAKY_DESCRIPTION not in text
    assert upstream.state.calls["whoami"] == 0


async def test_a_wrong_audience_or_client_secret_refuses_registration_clearly(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    wrong_audience = await register(secured, upstream, auth=_auth(authorization, audience="other-api"))
    wrong_secret = await register(secured, upstream, auth=_auth(authorization, secret="nope"))
    assert wrong_audience.is_error
    assert "(invalid_target)" in text_of(wrong_audience)
    assert wrong_secret.is_error
    assert "(invalid_client)" in text_of(wrong_secret)
    assert LEAKY_DESCRIPTION not in text_of(wrong_audience) + text_of(wrong_secret)


async def test_an_upstream_401_exchanges_the_subject_s_token_again_once(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    structured(await register(secured, upstream, auth=_auth(authorization)))
    assert (await _whoami(secured, "carol"))[0] == "acme/carol"
    before = authorization.exchanges
    for issued in [t for t, user in authorization.users.items() if user == "acme/carol"]:
        del authorization.users[issued]  # the upstream no longer accepts carol's token
    text, _, is_error = await _whoami(secured, "carol")
    assert (text, is_error) == ("acme/carol", False)
    assert authorization.exchanges == before + 1


async def test_erasing_a_subject_drops_their_exchanged_token_and_only_theirs(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    structured(await register(secured, upstream, auth=_auth(authorization)))
    assert (await _whoami(secured, "bob"))[0] == "acme/bob"
    before = authorization.exchanges
    base = secured.url.removesuffix("/mcp")
    async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {token(secured)}"}) as http:
        answer = await http.post(f"{base}/admin/erasures", json={"subject": "bob"})
    assert answer.status_code == 200, answer.text
    assert (await _whoami(secured, "alice"))[0] == "acme/alice"  # the admin's, still cached
    assert authorization.exchanges == before
    assert (await _whoami(secured, "bob"))[0] == "acme/bob"
    assert authorization.exchanges == before + 1


async def test_a_refused_exchange_after_an_upstream_401_is_a_clear_error_and_nothing_ran(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    structured(await register(secured, upstream, auth=_auth(authorization)))
    assert (await _whoami(secured, "carol"))[0] == "acme/carol"
    for issued in [t for t, user in authorization.users.items() if user == "acme/carol"]:
        del authorization.users[issued]
    authorization.refused.add("carol")  # carol's access was withdrawn at the authorization server
    text, _, is_error = await _whoami(secured, "carol")
    assert is_error
    assert "upstream 'fixture': the authorization server refused the token exchange" in text
    assert LEAKY_DESCRIPTION not in text
    assert upstream.state.calls["whoami"] == 1
