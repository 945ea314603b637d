"""Sealed state payloads (state model 3): AES-GCM tokens a client keeps and echoes back.

A token holds JSON state and its expiry, encrypted and authenticated under a key derived
for this purpose; the tenant and subject are bound as associated data, so a token opens
only for the subject it was sealed for, and any change to it is detected. Tokens are at
most 64 KB (MAX_SEALED_BYTES, also applied to MCP 2026-07-28 `requestState`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_SEALED_BYTES = 64 * 1024
_PREFIX = "v1."
_NONCE_BYTES = 12


class SealedStateError(ValueError):
    """A token that cannot be sealed or opened; `code` is too_large, malformed, tampered or expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _aad(tenant: str, subject: str) -> bytes:
    return f"sealed-state/v1\0{tenant}\0{subject}".encode()


class StateSealer:
    """Seals and opens state tokens with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, state: Any, *, tenant: str, subject: str, expires_at: float) -> str:
        """The token for `state`.

        Raises:
            SealedStateError: the token would exceed 64 KB.
        """
        plaintext = json.dumps({"exp": expires_at, "state": state}, separators=(",", ":")).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, _aad(tenant, subject))
        token = _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        if len(token) > MAX_SEALED_BYTES:
            raise SealedStateError("too_large", f"sealed state is {len(token)} bytes; the limit is 64 KB")
        return token

    def open(self, token: str, *, tenant: str, subject: str, now: float) -> Any:
        """The state inside `token`.

        Raises:
            SealedStateError: malformed, too large, tampered with (or sealed for someone else), expired.
        """
        if len(token) > MAX_SEALED_BYTES:
            raise SealedStateError("too_large", "sealed state over 64 KB is refused")
        if not token.startswith(_PREFIX):
            raise SealedStateError("malformed", "not a sealed state token")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :] + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as error:
            raise SealedStateError("malformed", "not a sealed state token") from error
        if len(raw) <= _NONCE_BYTES:
            raise SealedStateError("malformed", "not a sealed state token")
        try:
            plaintext = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(tenant, subject))
        except InvalidTag as error:
            raise SealedStateError("tampered", "the sealed state was altered or is not yours") from error
        envelope = json.loads(plaintext)
        if now >= float(envelope["exp"]):
            raise SealedStateError("expired", "the sealed state has expired")
        return envelope["state"]
