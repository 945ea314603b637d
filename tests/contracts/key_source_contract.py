"""The KeySource contract (mcp_api/auth/access_tokens.py): where the JWT verifier finds the
public keys of the authorization server it trusts.

Owns the shared tests, written against the port and the verifier that uses it. A subclass
named Test<Adapter> provides `source`, publishing the public halves of `trusted` (by default
three keys with key ids: EC, RSA and Ed25519; a source that cannot carry key ids overrides
`trusted` with one key without). The attacker's tokens are signed by keys nobody published.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mcp_ledger.mcp_api.auth.access_tokens import JwtVerifier, KeySource
from tests.support.signing_keys import SigningKey, ec_key, ed25519_key, rsa_key

ISSUER = "https://auth.example"
AUDIENCE = "http://127.0.0.1:8000/mcp"
ALGORITHMS = ["ES256", "RS256", "EdDSA"]
PUBLIC_TYPES = {"EC": ec.EllipticCurvePublicKey, "RSA": rsa.RSAPublicKey, "OKP": ed25519.Ed25519PublicKey}
JWK_TYPES = {"ES256": "EC", "RS256": "RSA", "EdDSA": "OKP"}
MAKERS: dict[str, Callable[[str | None], SigningKey]] = {
    "ES256": ec_key,
    "RS256": rsa_key,
    "EdDSA": ed25519_key,
}


def token(key: SigningKey, *, sub: str = "alice") -> str:
    """A good token signed by `key`, naming its key id if it has one."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "tenant": "acme", "iat": now, "exp": now + 300}
    header = {"kid": key.kid} if key.kid else {}
    return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=header)


def verifier(source: KeySource) -> JwtVerifier:
    return JwtVerifier(source, issuer=ISSUER, audience=AUDIENCE, algorithms=ALGORITHMS)


class KeySourceContract:
    @pytest.fixture
    def trusted(self) -> list[SigningKey]:
        return [ec_key("k-ec"), rsa_key("k-rsa"), ed25519_key("k-ed")]

    @pytest.fixture
    def source(self, trusted: list[SigningKey]) -> KeySource:
        raise NotImplementedError("an adapter's test class provides the source")

    async def test_a_token_signed_by_each_trusted_key_is_accepted(
        self, source: KeySource, trusted: list[SigningKey]
    ) -> None:
        check = verifier(source)
        for key in trusted:
            access = await check.verify_token(token(key, sub=f"signed-by-{key.algorithm}"))
            assert access is not None, key.algorithm
            assert access.subject == f"signed-by-{key.algorithm}"

    async def test_a_token_signed_by_a_key_nobody_published_is_refused(
        self, source: KeySource, trusted: list[SigningKey]
    ) -> None:
        check = verifier(source)
        for key in trusted:  # same algorithm, same key id: only the key itself differs
            forged = MAKERS[key.algorithm](key.kid)
            assert await check.verify_token(token(forged)) is None, key.algorithm

    async def test_it_gives_public_keys_only_each_of_its_declared_type(
        self, source: KeySource, trusted: list[SigningKey]
    ) -> None:
        keys = await source.keys(None)
        assert len(keys) == len(trusted)
        for key in keys:
            assert isinstance(key.key, PUBLIC_TYPES[key.key_type]), key.key_type

    async def test_asked_for_a_key_id_it_gives_that_key(
        self, source: KeySource, trusted: list[SigningKey]
    ) -> None:
        for signing in trusted:
            candidates = [
                fingerprint(key.key)
                for key in await source.keys(signing.kid)
                if key.kid in (None, signing.kid) and key.key_type == JWK_TYPES[signing.algorithm]
            ]
            assert candidates == [fingerprint(signing.public)], signing.kid


def fingerprint(public: Any) -> bytes:
    """The key's DER SubjectPublicKeyInfo: equal for the same public key, whatever loaded it."""
    return bytes(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
