"""OAuth 2.1 resource server: access tokens (JWT) in, an Identity out.

`JwtVerifier` is the SDK's `TokenVerifier`: it checks the signature against keys from a JWKS
URL or a configured key file, the issuer, the audience, expiry and not-before, and refuses
`alg: none` and every symmetric algorithm, so a public key can never be used as an HMAC
secret (HS/RS confusion). The SDK's bearer middleware turns a refusal into 401 with a
WWW-Authenticate header naming the RFC 9728 metadata. `TokenIdentityResolver` reads the
verified claims for the handlers. Minting tokens is `dev_tokens`' job, not this module's.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from mcp_ledger.domain.commands import NAME_PATTERN
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.auth.verified_tokens import VerifiedTokens

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
CLOCK_LEEWAY_SECONDS = 30
_TENANT = re.compile(NAME_PATTERN)


class AuthConfigurationError(ValueError):
    """The auth settings are unsafe or incomplete; the message says which."""


class UnauthenticatedError(Exception):
    """A request reached a handler without a verified identity."""


def check_algorithms(algorithms: Sequence[str]) -> list[str]:
    """The configured algorithms, refusing anything but asymmetric signatures.

    Raises:
        AuthConfigurationError: `none`, an HS* algorithm or an unknown name is configured.
    """
    bad = [alg for alg in algorithms if alg not in ASYMMETRIC_ALGORITHMS]
    if bad or not algorithms:
        raise AuthConfigurationError(
            f"LEDGER_AUTH_ALGORITHMS may only name asymmetric algorithms "
            f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); refused: {bad or 'empty list'}"
        )
    return list(algorithms)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key with its JWK key type ("RSA", "EC", "OKP") and optional key id."""

    key_type: str
    key: Any
    kid: str | None = None


def _from_jwks(document: dict[str, Any]) -> list[VerificationKey]:
    keys = jwt.PyJWKSet.from_dict(document).keys
    return [VerificationKey(str(k.key_type), k.key, k.key_id) for k in keys]


def _key_type(public: Any) -> str:
    if isinstance(public, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(public, ed25519.Ed25519PublicKey):
        return "OKP"
    raise ValueError("unsupported public key type")


def load_key_file(path: Path) -> list[VerificationKey]:
    """Public keys from a PEM file or a JWKS JSON document.

    Raises:
        AuthConfigurationError: the file holds no usable public key.
    """
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("{"):
            return _from_jwks(json.loads(text))
        public = load_pem_public_key(text.encode())
        return [VerificationKey(_key_type(public), public)]
    except (ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as error:
        raise AuthConfigurationError(f"{path}: not a PEM public key or JWKS: {error}") from error


class KeySource(Protocol):
    """Where the verifier finds public keys."""

    async def keys(self, kid: str | None) -> list[VerificationKey]:
        """The candidate keys; `kid` is the token's key id, a hint to refresh."""
        ...


class JwksKeys:
    """Keys from a JWKS URL, fetched with httpx, cached, refreshed at most every 30 s on a miss."""

    def __init__(self, url: str, *, max_age: float = 600.0, min_refresh: float = 30.0) -> None:
        self._url = url
        self._max_age = max_age
        self._min_refresh = min_refresh
        self._keys: list[VerificationKey] = []
        self._fetched_at = float("-inf")

    async def keys(self, kid: str | None) -> list[VerificationKey]:
        now = time.monotonic()
        stale = now - self._fetched_at > self._max_age
        missing = kid is not None and all(key.kid != kid for key in self._keys)
        if stale or (missing and now - self._fetched_at > self._min_refresh):
            await self._refresh(now)
        return self._keys

    async def _refresh(self, now: float) -> None:
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self._url)
                response.raise_for_status()
                self._keys = _from_jwks(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWKError, jwt.PyJWKSetError) as error:
            log.warning("could not refresh JWKS from %s: %s", self._url, error)
        self._fetched_at = now


@dataclass(frozen=True, slots=True)
class StaticKeys:
    """Keys configured in a file (or the local development key)."""

    loaded: tuple[VerificationKey, ...]

    async def keys(self, kid: str | None) -> list[VerificationKey]:
        return list(self.loaded)


class JwtVerifier:
    """Validates JWT access tokens for this resource server (SDK `TokenVerifier`)."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        tenant_claim: str = "tenant",
        roles_claim: str = "roles",
        verified: VerifiedTokens | None = None,
    ) -> None:
        self._keys = keys
        # Signature checks dominate an authenticated request's own cost; see verified_tokens.py.
        self._verified = verified if verified is not None else VerifiedTokens(leeway=CLOCK_LEEWAY_SECONDS)
        self._issuer = issuer
        self._audience = audience
        self._algorithms = check_algorithms(algorithms)
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim

    async def verify_token(self, token: str) -> AccessToken | None:
        """The token's access info, or None (logged) when anything about it is wrong."""
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = await self._claims(token)
            except jwt.PyJWTError as error:
                log.info("access token refused: %s", error)
                return None
            self._verified.keep(token, claims)
        return AccessToken(
            token=token,
            client_id=str(claims.get("azp") or claims.get("client_id") or "unknown"),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self._audience,
            subject=str(claims["sub"]),
            claims=claims,
        )

    async def _claims(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise jwt.InvalidAlgorithmError(f"algorithm {alg!r} is not accepted")
        candidates = [
            key
            for key in await self._keys.keys(header.get("kid"))
            if key.key_type == _KEY_TYPES[str(alg)[:2]]
            and (header.get("kid") is None or key.kid in (None, header.get("kid")))
        ]
        if not candidates:
            raise jwt.InvalidKeyError("no key matches the token's kid and algorithm")
        last: jwt.PyJWTError = jwt.InvalidSignatureError("no key verified the signature")
        for key in candidates:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key.key,
                    algorithms=[str(alg)],
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=CLOCK_LEEWAY_SECONDS,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                )
            except jwt.InvalidSignatureError as error:
                last = error
                continue
            self._check_identity_claims(claims)
            return claims
        raise last

    def _check_identity_claims(self, claims: dict[str, Any]) -> None:
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.match(tenant) or len(tenant) > 128:
            raise jwt.MissingRequiredClaimError(self._tenant_claim)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= 256:
            raise jwt.MissingRequiredClaimError("sub")
        roles_of(claims, self._roles_claim)


def roles_of(claims: dict[str, Any], roles_claim: str) -> tuple[str, ...]:
    """Roles from a list claim or a space-separated string claim.

    Raises:
        jwt.InvalidTokenError: the claim is neither.
    """
    value = claims.get(roles_claim, [])
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(role, str) for role in value):
        return tuple(value)
    raise jwt.InvalidTokenError(f"claim {roles_claim!r} must be a list of strings")


@dataclass(frozen=True, slots=True)
class TokenIdentityResolver:
    """The identity the bearer middleware verified for this request."""

    tenant_claim: str = "tenant"
    roles_claim: str = "roles"

    def resolve(self, request: Any) -> Identity:
        """Raises: UnauthenticatedError when the request carries no verified token."""
        user = request.scope.get("user") if request is not None else None
        if not isinstance(user, AuthenticatedUser) or user.access_token.claims is None:
            raise UnauthenticatedError("no verified access token")
        claims = user.access_token.claims
        return Identity(
            tenant=str(claims[self.tenant_claim]),
            subject=str(user.access_token.subject),
            roles=roles_of(claims, self.roles_claim),
        )
