"""The worker's cache of exchanged tokens against the test authorization server: per subject,
kept until shortly before expiry, forgotten for an erased subject only, nothing kept while
caching is off (the erasure barrier unreachable)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_ledger.consumers.upstreams.auth.assertions import AssertionSigner
from mcp_ledger.consumers.upstreams.auth.exchange import ExchangedTokens
from mcp_ledger.consumers.upstreams.connection import EgressPolicy, UpstreamTarget
from mcp_ledger.domain.upstreams.model import UpstreamServer
from tests.support.token_server import TokenServer, exchange_server

SECRET = "client-secret"


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server() -> AsyncIterator[TokenServer]:
    signer = AssertionSigner(bytes(32), "https://gateway.example")
    async with exchange_server(
        tenant="acme", audience="api", issuer=signer.issuer, jwks=signer.jwks(), client_secret=SECRET
    ) as running:
        running.expires_in = 120
        yield running


def _tokens(clock: Clock) -> ExchangedTokens:
    signer = AssertionSigner(bytes(32), "https://gateway.example")
    return ExchangedTokens(EgressPolicy(allowed_hosts=("127.0.0.1",)), signer, clock=clock)


def _target(server: TokenServer, subject: str) -> UpstreamTarget:
    auth = {"kind": "token_exchange", "token_url": server.url, "client_id": "gateway", "audience": "api"}
    entry = UpstreamServer.model_validate({"name": "fx", "url": "http://127.0.0.1:1/mcp", "auth": auth})
    return UpstreamTarget(entry, SECRET, "acme", None, subject)


async def test_tokens_are_per_subject_and_exchanged_again_shortly_before_they_expire(
    server: TokenServer,
) -> None:
    clock = Clock()
    tokens = _tokens(clock)
    alice = await tokens.token(_target(server, "alice"))
    assert await tokens.token(_target(server, "alice")) == alice
    bob = await tokens.token(_target(server, "bob"))
    assert (server.users[alice], server.users[bob]) == ("acme/alice", "acme/bob")
    clock.now += 89  # 120 s tokens are kept 90 s
    assert await tokens.token(_target(server, "alice")) == alice
    clock.now += 2
    assert await tokens.token(_target(server, "alice")) != alice
    assert server.exchanges == 3


async def test_forgetting_a_subject_drops_only_their_tokens_and_caching_off_keeps_none(
    server: TokenServer,
) -> None:
    tokens = _tokens(Clock())
    alice = await tokens.token(_target(server, "alice"))
    bob = await tokens.token(_target(server, "bob"))
    tokens.forget_subject("acme", "alice")
    assert await tokens.token(_target(server, "bob")) == bob
    assert await tokens.token(_target(server, "alice")) != alice
    tokens.set_caching(False)
    assert len(tokens) == 0
    await tokens.token(_target(server, "bob"))
    assert len(tokens) == 0
    assert server.exchanges == 4


async def test_an_expired_token_is_dropped_when_another_subject_s_is_stored(
    server: TokenServer,
) -> None:
    clock = Clock()
    tokens = _tokens(clock)
    await tokens.token(_target(server, "alice"))
    clock.now += 91  # alice's token is past its 90 s and nobody asks for it again
    await tokens.token(_target(server, "bob"))
    assert len(tokens) == 1
