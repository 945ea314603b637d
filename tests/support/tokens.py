"""Access tokens for tests: good ones from the development key, and every kind of bad one."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_ledger.mcp_api.auth.dev_tokens import DEV_KEY_ID, dev_private_key, mint_token
from mcp_ledger.settings import Settings


def good_token(
    settings: Settings, *, sub: str = "alice", tenant: str = "acme", roles: tuple[str, ...] = ("admin",)
) -> str:
    return mint_token(
        settings.data_dir,
        subject=sub,
        tenant=tenant,
        roles=roles,
        issuer=settings.auth_issuer,
        audience=settings.audience,
    )


def claims_for(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer,
        "aud": settings.audience,
        "sub": "alice",
        "tenant": "acme",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def signed(settings: Settings, claims: dict[str, Any]) -> str:
    """Signed with the trusted development key: only the claims can be wrong."""
    return jwt.encode(
        claims, dev_private_key(settings.data_dir), algorithm="ES256", headers={"kid": DEV_KEY_ID}
    )


def forged(settings: Settings) -> str:
    """Good claims signed by a key the server does not trust."""
    return jwt.encode(claims_for(settings), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")


def alg_none(settings: Settings) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims_for(settings))}."


def hs256_with_public_key(settings: Settings) -> str:
    """The HS/RS confusion attack: HMAC keyed with the server's public key."""
    public = dev_private_key(settings.data_dir).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).decode().rstrip("=")
    )
    body = base64.urlsafe_b64encode(json.dumps(claims_for(settings)).encode()).decode().rstrip("=")
    import hashlib
    import hmac

    signature = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def bad_tokens(settings: Settings) -> dict[str, str]:
    """Every token the gateway must refuse, by name."""
    now = int(time.time())
    return {
        "forged": forged(settings),
        "expired": signed(settings, claims_for(settings, exp=now - 120, iat=now - 600)),
        "not_yet_valid": signed(settings, claims_for(settings, nbf=now + 600)),
        "wrong_audience": signed(settings, claims_for(settings, aud="https://other.example/mcp")),
        "wrong_issuer": signed(settings, claims_for(settings, iss="https://evil.example")),
        "alg_none": alg_none(settings),
        "hs256_confusion": hs256_with_public_key(settings),
        "no_tenant": signed(settings, claims_for(settings, tenant=None)),
        "bad_tenant": signed(settings, claims_for(settings, tenant="a:b")),
        "no_subject": signed(settings, claims_for(settings, sub=None)),
        "garbage": "not.a.jwt",
    }


def write_public_pem(settings: Settings, path: Path) -> Path:
    public = dev_private_key(settings.data_dir).public_key()
    path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path
