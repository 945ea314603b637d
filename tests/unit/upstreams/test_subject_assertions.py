"""The subject assertions of token exchanges: signed with a key derived from the deployment's
secret (every worker alike), verifiable with the published key set, bound to one token
endpoint, a tenant and a subject, valid for a minute."""

from __future__ import annotations

import time

import jwt
from jwt import PyJWK

from mcp_ledger.consumers.upstreams.auth.assertions import LIFETIME_S, AssertionSigner

SEED = bytes(range(32))
ENDPOINT = "https://as.example/token"


def _claims(signer: AssertionSigner, token: str, audience: str = ENDPOINT) -> dict[str, object]:
    key = PyJWK(signer.jwks()["keys"][0]).key
    claims: dict[str, object] = jwt.decode(
        token, key, algorithms=["ES256"], audience=audience, issuer=signer.issuer
    )
    return claims


def test_an_assertion_names_tenant_subject_and_endpoint_and_lives_a_minute() -> None:
    now = float(int(time.time()))
    signer = AssertionSigner(SEED, "https://gateway.example", clock=lambda: now)
    token = signer.assertion("acme", "alice", ENDPOINT)
    claims = _claims(AssertionSigner(SEED, "https://gateway.example"), token)
    assert (claims["tenant"], claims["sub"], claims["aud"]) == ("acme", "alice", ENDPOINT)
    assert claims["exp"] == now + LIFETIME_S
    assert jwt.get_unverified_header(token)["kid"] == signer.kid


def test_an_assertion_for_one_endpoint_is_refused_for_another() -> None:
    signer = AssertionSigner(SEED, "https://gateway.example")
    token = signer.assertion("acme", "alice", "https://attacker.example/token")
    try:
        _claims(signer, token)
    except jwt.InvalidAudienceError:
        return
    raise AssertionError("an assertion for another endpoint verified")


def test_another_deployment_s_secret_signs_with_another_key() -> None:
    ours = AssertionSigner(SEED, "https://gateway.example")
    theirs = AssertionSigner(bytes(32), "https://gateway.example")
    assert ours.kid != theirs.kid
    try:
        _claims(ours, theirs.assertion("acme", "alice", ENDPOINT))
    except jwt.InvalidSignatureError:
        return
    raise AssertionError("a foreign assertion verified")


def test_each_assertion_is_unique() -> None:
    signer = AssertionSigner(SEED, "https://gateway.example")
    first, second = (_claims(signer, signer.assertion("acme", "alice", ENDPOINT)) for _ in range(2))
    assert first["jti"] != second["jti"]
