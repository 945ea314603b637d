"""The key source contract on every way the verifier gets keys: a PEM file (one key of each
type), a JWKS file, and a JWKS URL served by a real local HTTP server; plus what only the URL
shows: caching, picking up a rotated key without hammering the server, and keeping the last
good keys through an outage."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.mcp_api.auth.access_tokens import JwksKeys, KeySource, StaticKeys, load_key_file
from tests.contracts.key_source_contract import KeySourceContract, token, verifier
from tests.support.signing_keys import SigningKey, ec_key, ed25519_key, jwks, jwks_server, rsa_key

WAIT_SECONDS = 5.0


class TestPemKeyFile(KeySourceContract):
    @pytest.fixture(params=["ES256", "RS256", "EdDSA"])
    def trusted(self, request: pytest.FixtureRequest) -> list[SigningKey]:
        return [{"ES256": ec_key, "RS256": rsa_key, "EdDSA": ed25519_key}[request.param]()]

    @pytest.fixture
    def source(self, trusted: list[SigningKey], tmp_path: Path) -> KeySource:
        (path := tmp_path / "issuer.pem").write_bytes(trusted[0].pem())
        return StaticKeys(tuple(load_key_file(path)))


class TestJwksKeyFile(KeySourceContract):
    @pytest.fixture
    def source(self, trusted: list[SigningKey], tmp_path: Path) -> KeySource:
        (path := tmp_path / "jwks.json").write_text(json.dumps(jwks(trusted)))
        return StaticKeys(tuple(load_key_file(path)))


class TestJwksUrl(KeySourceContract):
    @pytest.fixture
    async def source(self, trusted: list[SigningKey]) -> AsyncIterator[KeySource]:
        async with jwks_server(trusted) as server:
            yield JwksKeys(server.url)


async def test_the_jwks_is_fetched_once_and_then_served_from_the_cache() -> None:
    key = ec_key("k1")
    async with jwks_server([key]) as server:
        check = verifier(JwksKeys(server.url))
        for _ in range(5):
            assert await check.verify_token(token(key)) is not None
        assert server.requests == 1


async def test_a_rotated_key_is_picked_up_but_unknown_key_ids_never_hammer_the_server() -> None:
    old, new, unknown = ec_key("k-old"), ec_key("k-new"), ec_key("k-nobody")
    async with jwks_server([old]) as server:
        check = verifier(JwksKeys(server.url, min_refresh=0.5))
        assert await check.verify_token(token(old)) is not None
        server.keys = [old, new]  # the authorization server rotates
        assert await check.verify_token(token(new)) is None  # too soon to ask again
        for _ in range(20):  # an attacker naming key ids nobody has, as fast as it can
            assert await check.verify_token(token(unknown)) is None
        assert server.requests == 1
        async with asyncio.timeout(WAIT_SECONDS):
            while await check.verify_token(token(new)) is None:
                await asyncio.sleep(0.05)
        asked = server.requests
        assert 2 <= asked <= 1 + WAIT_SECONDS / 0.5
        for _ in range(20):
            assert await check.verify_token(token(unknown)) is None
        assert server.requests <= asked + 1


async def test_an_outage_of_the_jwks_keeps_the_last_good_keys() -> None:
    key = rsa_key("k1")
    async with jwks_server([key]) as server:
        check = verifier(JwksKeys(server.url, max_age=0.2, min_refresh=0.2))
        assert await check.verify_token(token(key)) is not None
        server.failing = True
        async with asyncio.timeout(WAIT_SECONDS):
            while server.requests < 2:  # past max_age: it asks again, and gets a 503
                assert await check.verify_token(token(key)) is not None
                await asyncio.sleep(0.05)
        assert await check.verify_token(token(key)) is not None


async def test_a_jwks_that_never_answered_trusts_no_key() -> None:
    key = ec_key("k1")
    async with jwks_server([key]) as server:
        server.failing = True
        assert await verifier(JwksKeys(server.url)).verify_token(token(key)) is None
        assert server.requests == 1
