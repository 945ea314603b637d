"""Signing keys an authorization server would hold, their public halves as a PEM file or a
JWKS document, and a real local HTTP server publishing that JWKS (uvicorn on port 0), which
counts its requests and can rotate its keys or fail, as authorization servers do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.loopback import serving


@dataclass(frozen=True)
class SigningKey:
    """A private key, the algorithm it signs with, and the key id it is published under."""

    private: Any
    algorithm: str
    kid: str | None = None

    @property
    def public(self) -> Any:
        return self.private.public_key()

    def jwk(self) -> dict[str, Any]:
        """The public JWK, with `kid`, `alg` and `use`."""
        prefix = self.algorithm[:2]
        if prefix == "ES":
            text = ECAlgorithm.to_jwk(self.public)
        elif prefix == "RS":
            text = RSAAlgorithm.to_jwk(self.public)
        else:
            text = OKPAlgorithm.to_jwk(self.public)
        jwk: dict[str, Any] = json.loads(text)
        return {**jwk, "alg": self.algorithm, "use": "sig", **({"kid": self.kid} if self.kid else {})}

    def pem(self) -> bytes:
        return bytes(
            self.public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def ec_key(kid: str | None = None) -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "ES256", kid)


def rsa_key(kid: str | None = None) -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256", kid)


def ed25519_key(kid: str | None = None) -> SigningKey:
    return SigningKey(ed25519.Ed25519PrivateKey.generate(), "EdDSA", kid)


def jwks(keys: Sequence[SigningKey]) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


@dataclass
class JwksServer:
    """What the server publishes and how often it was asked; `failing` answers 503."""

    keys: list[SigningKey]
    url: str = ""
    requests: int = 0
    failing: bool = False


def _app(server: JwksServer) -> Starlette:
    async def document(request: Request) -> Response:
        server.requests += 1
        if server.failing:
            return JSONResponse({"error": "unavailable"}, status_code=503)
        return JSONResponse(jwks(server.keys))

    return Starlette(routes=[Route("/.well-known/jwks.json", document)])


@asynccontextmanager
async def jwks_server(keys: Sequence[SigningKey]) -> AsyncIterator[JwksServer]:
    """The JWKS of `keys` at `server.url` on 127.0.0.1, for the duration of the block."""
    published = JwksServer(list(keys))
    async with serving(_app(published)) as base:
        published.url = f"{base}/.well-known/jwks.json"
        yield published
