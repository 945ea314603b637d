"""Verified access tokens are remembered briefly: never past their expiry, never when refused,
never beyond the bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mcp_ledger.mcp_api.auth.access_tokens import (
    CLOCK_LEEWAY_SECONDS,
    JwtVerifier,
    StaticKeys,
    VerificationKey,
)
from mcp_ledger.mcp_api.auth.dev_tokens import dev_public_keys
from mcp_ledger.mcp_api.auth.verified_tokens import VerifiedTokens
from mcp_ledger.settings import Settings
from tests.support.tokens import bad_tokens, good_token


class CountingKeys:
    """The development keys, counting how often a signature check asked for them."""

    def __init__(self, keys: StaticKeys) -> None:
        self._keys = keys
        self.asked = 0

    async def keys(self, kid: str | None) -> list[VerificationKey]:
        self.asked += 1
        return await self._keys.keys(kid)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _verifier(settings: Settings, keys: CountingKeys, cache: VerifiedTokens) -> JwtVerifier:
    return JwtVerifier(
        keys,
        issuer=settings.auth_issuer,
        audience=settings.audience,
        algorithms=["ES256", "RS256"],
        verified=cache,
    )


async def test_a_token_verified_once_is_accepted_again_without_another_signature_check(
    settings: Settings,
) -> None:
    keys = CountingKeys(dev_public_keys(settings.data_dir))
    verifier = _verifier(settings, keys, VerifiedTokens())
    token = good_token(settings, sub="bob", tenant="globex", roles=("data-analyst",))
    first, second = await verifier.verify_token(token), await verifier.verify_token(token)
    assert first is not None
    assert second is not None
    assert second.subject == "bob"
    assert second.claims == first.claims
    assert keys.asked == 1


async def test_a_remembered_token_is_checked_in_full_again_once_it_has_expired(settings: Settings) -> None:
    keys, clock = CountingKeys(dev_public_keys(settings.data_dir)), Clock()
    verifier = _verifier(
        settings, keys, VerifiedTokens(seconds=3600, leeway=CLOCK_LEEWAY_SECONDS, clock=clock)
    )
    token = good_token(settings, sub="bob", tenant="globex", roles=())
    access = await verifier.verify_token(token)
    assert access is not None
    assert access.expires_at is not None
    clock.now = access.expires_at + CLOCK_LEEWAY_SECONDS + 1
    await verifier.verify_token(token)
    assert keys.asked == 2


async def test_a_refused_token_is_never_remembered(settings: Settings) -> None:
    keys = CountingKeys(dev_public_keys(settings.data_dir))
    cache = VerifiedTokens()
    verifier = _verifier(settings, keys, cache)
    forged = bad_tokens(settings)["forged"]
    assert await verifier.verify_token(forged) is None
    assert await verifier.verify_token(forged) is None
    assert keys.asked == 2
    assert len(cache) == 0


def test_the_cache_holds_at_most_its_bound_and_drops_the_least_recently_used() -> None:
    cache = VerifiedTokens(max_entries=2)
    exp = time.time() + 300
    for token in ("a", "b"):
        cache.keep(token, {"exp": exp, "sub": token})
    assert cache.get("a") is not None  # "a" used last: "b" goes first
    cache.keep("c", {"exp": exp, "sub": "c"})
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") == {"exp": exp, "sub": "a"}
