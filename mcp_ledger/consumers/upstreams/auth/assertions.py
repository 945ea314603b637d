"""The subject token of an RFC 8693 exchange: a short-lived assertion the gateway signs,
naming the tenant and subject a worker calls an upstream for.

Why not the agent's own access token: the worker never has it (commands cross the bus and
the store without credentials, and a plan step may run after it expired), its audience is
the gateway, and presenting it elsewhere is token passthrough. The assertion is a JWT
(ES256) with `iss` the gateway, `sub` the subject, `tenant`, `aud` the one token endpoint it
is for (an assertion minted for one authorization server is refused by another), `exp` a
minute away and a fresh `jti`. Its key is derived from the deployment's secret
(`LEDGER_SECRET_KEY`), so every worker signs alike; the authorization server trusts the
public half (`jwks()`, printed by `mcp-ledger servers assertion-jwks`). Verifying is the
authorization server's job, not this module's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
LIFETIME_S = 60
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order of P-256: a derived scalar is reduced into [1, order - 1]."""


def _b64(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


class AssertionSigner:
    """Signs subject assertions with the P-256 key derived from 32 secret bytes."""

    def __init__(self, seed: bytes, issuer: str, *, clock: Callable[[], float] = time.time) -> None:
        scalar = int.from_bytes(hashlib.sha256(seed).digest(), "big") % (_ORDER - 1) + 1
        self._key = ec.derive_private_key(scalar, ec.SECP256R1())
        self._issuer = issuer
        self._clock = clock
        numbers = self._key.public_key().public_numbers()
        self._public = {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x), "y": _b64(numbers.y)}
        thumbprint = hashlib.sha256(json.dumps(self._public, separators=(",", ":")).encode()).digest()
        self.kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()  # RFC 7638

    @property
    def issuer(self) -> str:
        return self._issuer

    def jwks(self) -> dict[str, Any]:
        """The public key set an authorization server trusts for these assertions."""
        return {"keys": [{**self._public, "kid": self.kid, "use": "sig", "alg": "ES256"}]}

    def assertion(self, tenant: str, subject: str, audience: str) -> str:
        """A signed assertion that the gateway acts for `subject` of `tenant`, for `audience`
        (the token endpoint) only, valid for LIFETIME_S seconds."""
        now = int(self._clock())
        claims = {
            "iss": self._issuer,
            "sub": subject,
            "tenant": tenant,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_S,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})
