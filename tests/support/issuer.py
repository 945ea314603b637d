"""An authorization server for tests: a fresh signing key, its JWKS file, and real access tokens.

Both stacks are started with `LEDGER_AUTH_KEYS_FILE` naming this issuer's JWKS and with its
issuer and audience, so every request of a stack test carries a token the gateway verifies
the way it verifies production tokens (signature, kid, iss, aud, exp, tenant and roles
claims). The key never leaves the test process; nothing else can mint for it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class TokenIssuer:
    """Mints ES256 access tokens that a gateway trusting `jwks()` accepts."""

    issuer: str = "https://issuer.ledger.test"
    audience: str = "https://ledger.test/mcp"
    kid: str = field(default_factory=lambda: f"stack-{secrets.token_hex(4)}")
    key: ec.EllipticCurvePrivateKey = field(default_factory=_new_key, repr=False)

    def write_jwks(self, path: Path) -> Path:
        """Write the public half as a JWKS document (what LEDGER_AUTH_KEYS_FILE reads)."""
        jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        path.write_text(json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}]}))
        return path

    def token(self, tenant: str, subject: str, roles: Sequence[str] = (), *, lifetime: int = 900) -> str:
        """An access token for this subject of this tenant with these roles."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "tenant": tenant,
            "roles": list(roles),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
            "client_id": "stack-tests",
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": self.kid})
