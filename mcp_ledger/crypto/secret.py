"""The gateway's master secret and the purpose-bound keys derived from it.

API replicas and workers must share it (pointers are signed by the worker that ran a tool
and checked by whichever replica the client reads them from), so it comes from
LEDGER_SECRET_KEY; the embedded default keeps a generated one in the data directory (0600).
Each use gets its own HKDF-derived key, so a pointer signature can never open sealed state.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_FILE = "secret.key"
MIN_SECRET_BYTES = 32


class SecretConfigurationError(ValueError):
    """The configured secret is missing, malformed or too short."""


def decode_secret(text: str) -> bytes:
    """Raises: SecretConfigurationError unless `text` is base64 of at least 32 bytes."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as error:
        raise SecretConfigurationError("LEDGER_SECRET_KEY must be base64") from error
    if len(raw) < MIN_SECRET_BYTES:
        raise SecretConfigurationError(f"LEDGER_SECRET_KEY must hold at least {MIN_SECRET_BYTES} bytes")
    return raw


def master_secret(configured: str, data_dir: Path) -> bytes:
    """The configured secret, or the data directory's own (created on first use)."""
    if configured:
        return decode_secret(configured)
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(base64.b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).decode())
    return decode_secret(path.read_text())


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose (e.g. "pointers/v1")."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=f"mcp-ledger/{purpose}".encode()).derive(
        secret
    )
