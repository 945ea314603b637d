"""AES-256-GCM with random 96-bit nonces, and key wrapping under a key-encryption key.

Owns the byte formats: a sealed blob is nonce || ciphertext || tag; associated data binds a
blob to where it belongs so it cannot be moved to another subject, stream or field. Does not
know where keys live (ports.py, sql.py) or what is personal (sealing.py).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionError(Exception):
    """The blob was not sealed with this key and associated data, or was altered."""


def new_key() -> bytes:
    """A fresh random AES-256 key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def encrypt(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """nonce || AES-GCM(plaintext); the nonce is random, so sealing twice never repeats one."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def decrypt(key: bytes, blob: bytes, associated: bytes) -> bytes:
    """The plaintext of a blob made by `encrypt`.

    Raises:
        DecryptionError: wrong key, wrong associated data, or the blob was altered.
    """
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionError("sealed blob is too short")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except InvalidTag as error:
        raise DecryptionError("authentication failed") from error


def wrap_associated(kek_id: str, tenant: str, subject: str, key_id: str) -> bytes:
    """What a wrapped data key is bound to: its KEK and its row."""
    return "\x1f".join(("subject-key", kek_id, tenant, subject, key_id)).encode()
