"""The audit hash chain: each stored row's hash covers the previous row's hash and its own
canonical bytes, in global order, so editing, deleting or reordering a row is detected.

Owns the canonical form of a row (including ciphertext, so crypto-shredding never breaks the
chain) and the link function. Migration 0002 holds a frozen copy of both: keep them equal.
Does not read or write the database (sql.py and audit.py do).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical_row(
    stream_id: str,
    version: int,
    event_type: str,
    schema_version: int,
    data: dict[str, Any],
    metadata: dict[str, Any],
    recorded_at: datetime,
    command_id: str | None,
) -> bytes:
    """The bytes of a row the chain covers: stable across databases and JSON key orders."""
    body = [
        stream_id,
        version,
        event_type,
        schema_version,
        data,
        metadata,
        recorded_at.astimezone(UTC).isoformat(),
        command_id,
    ]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link(previous: str, canonical: bytes) -> str:
    """The chain hash of a row: sha256(previous hash || canonical bytes), hex."""
    return hashlib.sha256(previous.encode() + canonical).hexdigest()
