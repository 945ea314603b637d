"""Sealed state payloads (state model 3): AES-GCM tokens a client keeps and echoes back.

A token holds JSON state and its expiry, encrypted and authenticated under a key derived
from the subject's data key (and the gateway's sealed-state secret), so erasing the subject
(destroying their data key) makes every token sealed for them fail to open, with the code
`erased`. The tenant, subject and data key id are bound as associated data, so a token opens
only for the subject it was sealed for, and any change to it is detected; a keyed tag checked
first tells a foreign or altered token (`tampered`) from an erased one without a key lookup
for someone else's key. Tokens are at most 64 KB (MAX_SEALED_BYTES, also applied to MCP
2026-07-28 `requestState`).

Token: "v2." + base64url(tag(12) || len(key id)(1) || key id || nonce(12) || ciphertext).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mcp_ledger.crypto.ports import KeyDestroyedError, KeyStore

MAX_SEALED_BYTES = 64 * 1024
_PREFIX = "v2."
_NONCE_BYTES = 12
_TAG_BYTES = 12


class SealedStateError(ValueError):
    """A token that cannot be sealed or opened; `code` is too_large, malformed, tampered,
    expired or erased."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _aad(tenant: str, subject: str, key_id: str) -> bytes:
    return f"sealed-state/v2\0{tenant}\0{subject}\0{key_id}".encode()


class StateSealer:
    """Seals and opens state tokens under keys derived from the subjects' data keys."""

    def __init__(self, keys: KeyStore, secret: bytes) -> None:
        self._keys = keys
        self._secret = secret

    @property
    def keys(self) -> KeyStore:
        return self._keys

    async def seal(self, state: Any, *, tenant: str, subject: str, expires_at: float) -> str:
        """The token for `state`.

        Raises:
            SealedStateError: the token would exceed 64 KB.
        """
        data_key = await self._keys.active_key(tenant, subject)
        key_id = data_key.key_id.encode()
        plaintext = json.dumps({"exp": expires_at, "state": state}, separators=(",", ":")).encode()
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._derive(data_key.key)).encrypt(
            nonce, plaintext, _aad(tenant, subject, data_key.key_id)
        )
        body = self._tag(tenant, subject, key_id) + bytes([len(key_id)]) + key_id + nonce + sealed
        token = _PREFIX + base64.urlsafe_b64encode(body).decode().rstrip("=")
        if len(token) > MAX_SEALED_BYTES:
            raise SealedStateError("too_large", f"sealed state is {len(token)} bytes; the limit is 64 KB")
        return token

    async def open(self, token: str, *, tenant: str, subject: str, now: float) -> Any:
        """The state inside `token`.

        Raises:
            SealedStateError: malformed, too large, tampered with (or sealed for someone else),
                expired, or erased (the subject's data key was destroyed).
        """
        if len(token) > MAX_SEALED_BYTES:
            raise SealedStateError("too_large", "sealed state over 64 KB is refused")
        tag, key_id, nonce, sealed = _parse(token)
        if not hmac.compare_digest(tag, self._tag(tenant, subject, key_id)):
            raise SealedStateError("tampered", "the sealed state was altered or is not yours")
        try:
            data_key = await self._keys.key(tenant, subject, key_id.decode())
        except KeyDestroyedError as error:
            raise SealedStateError(
                "erased", "this sealed state was erased with its subject's data; seal the state again"
            ) from error
        try:
            plaintext = AESGCM(self._derive(data_key.key)).decrypt(
                nonce, sealed, _aad(tenant, subject, data_key.key_id)
            )
        except InvalidTag as error:
            raise SealedStateError("tampered", "the sealed state was altered or is not yours") from error
        envelope = json.loads(plaintext)
        if now >= float(envelope["exp"]):
            raise SealedStateError("expired", "the sealed state has expired")
        return envelope["state"]

    def _derive(self, data_key: bytes) -> bytes:
        hkdf = HKDF(algorithm=SHA256(), length=32, salt=self._secret, info=b"mcp-ledger/sealed-state/v2")
        return hkdf.derive(data_key)

    def _tag(self, tenant: str, subject: str, key_id: bytes) -> bytes:
        message = b"\0".join([b"sealed-state-tag/v2", tenant.encode(), subject.encode(), key_id])
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _parse(token: str) -> tuple[bytes, bytes, bytes, bytes]:
    if not token.startswith(_PREFIX):
        raise SealedStateError("malformed", "not a sealed state token (or sealed before erasure binding)")
    try:
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :] + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as error:
        raise SealedStateError("malformed", "not a sealed state token") from error
    if len(raw) <= _TAG_BYTES + 1:
        raise SealedStateError("malformed", "not a sealed state token")
    size = raw[_TAG_BYTES]
    start = _TAG_BYTES + 1
    key_id, rest = raw[start : start + size], raw[start + size :]
    if len(key_id) != size or len(rest) <= _NONCE_BYTES:
        raise SealedStateError("malformed", "not a sealed state token")
    return raw[:_TAG_BYTES], key_id, rest[:_NONCE_BYTES], rest[_NONCE_BYTES:]
