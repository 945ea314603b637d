"""The local development signing key and the access tokens `mcp-ledger token` mints with it.

The key (EC P-256, ES256) lives in the data directory with mode 0600 and is made on first
use. A gateway with no JWKS URL or key file configured trusts exactly this key, so a
developer on one machine can mint tokens for any tenant, subject and roles. Production
deployments configure their authorization server instead (LEDGER_AUTH_JWKS_URL).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_ledger.mcp_api.auth.access_tokens import StaticKeys, VerificationKey

DEV_KEY_FILE = "dev-signing-key.pem"
DEV_KEY_ID = "mcp-ledger-dev"


def dev_private_key(data_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The development signing key, created (0600) if it does not exist yet."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # O_EXCL: two processes starting at once must not both write a different key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return loaded


def dev_public_keys(data_dir: Path) -> StaticKeys:
    """The verification side of the development key."""
    public = dev_private_key(data_dir).public_key()
    return StaticKeys((VerificationKey("EC", public, DEV_KEY_ID),))


def mint_token(
    data_dir: Path,
    *,
    subject: str,
    tenant: str,
    roles: Sequence[str],
    issuer: str,
    audience: str,
    lifetime: float = 3600.0,
    tenant_claim: str = "tenant",
    roles_claim: str = "roles",
) -> str:
    """An ES256 access token signed with the development key."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        tenant_claim: tenant,
        roles_claim: list(roles),
        "iat": now,
        "nbf": now,
        "exp": now + int(lifetime),
        "jti": secrets.token_urlsafe(12),
        "client_id": "mcp-ledger-cli",
    }
    return jwt.encode(claims, dev_private_key(data_dir), algorithm="ES256", headers={"kid": DEV_KEY_ID})
