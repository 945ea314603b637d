"""The JWT verifier accepts exactly the tokens it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_ledger.mcp_api.auth.access_tokens import (
    AuthConfigurationError,
    JwtVerifier,
    StaticKeys,
    check_algorithms,
    load_key_file,
)
from mcp_ledger.mcp_api.auth.dev_tokens import dev_public_keys
from mcp_ledger.settings import Settings
from tests.support.tokens import bad_tokens, good_token, write_public_pem


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _verifier(settings: Settings, keys: StaticKeys | None = None) -> JwtVerifier:
    return JwtVerifier(
        keys or dev_public_keys(settings.data_dir),
        issuer=settings.auth_issuer,
        audience=settings.audience,
        algorithms=["ES256", "RS256"],
    )


async def test_a_token_from_the_trusted_key_yields_subject_tenant_and_roles(settings: Settings) -> None:
    token = good_token(settings, sub="bob", tenant="globex", roles=("data-analyst",))
    access = await _verifier(settings).verify_token(token)
    assert access is not None
    assert access.subject == "bob"
    assert access.claims is not None
    assert access.claims["tenant"] == "globex"
    assert access.claims["roles"] == ["data-analyst"]


@pytest.mark.parametrize(
    "name",
    [
        "forged",
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "wrong_issuer",
        "alg_none",
        "hs256_confusion",
        "no_tenant",
        "bad_tenant",
        "no_subject",
        "garbage",
    ],
)
async def test_a_bad_token_is_refused(settings: Settings, name: str) -> None:
    assert await _verifier(settings).verify_token(bad_tokens(settings)[name]) is None


async def test_keys_load_from_a_pem_file(settings: Settings, tmp_path: Path) -> None:
    keys = StaticKeys(tuple(load_key_file(write_public_pem(settings, tmp_path / "key.pem"))))
    assert await _verifier(settings, keys).verify_token(good_token(settings)) is not None


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS512"], []])
def test_symmetric_or_no_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(AuthConfigurationError):
        check_algorithms(algorithms)
