"""The key store port: per-subject data keys, kept apart from the events they protect.

A subject has at most one active data key. Destroying a subject's keys is crypto-shredding:
everything sealed with them becomes unreadable for good. After that a subject that comes back
gets a new key; its old data stays unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class KeyStoreError(Exception):
    """Base class of the key store's errors."""


class KeyDestroyedError(KeyStoreError):
    """The data key was destroyed (the subject was erased) or never existed."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """An unwrapped data key and its id (stored beside every value it sealed)."""

    key_id: str
    key: bytes


class KeyStore(Protocol):
    """Per-subject data keys, wrapped at rest by a key-encryption key."""

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        """The subject's active data key, created on first use (safe under concurrency)."""
        ...

    async def key(self, tenant: str, subject: str, key_id: str) -> DataKey:
        """A data key by id.

        Raises:
            KeyDestroyedError: it was destroyed or never belonged to that subject.
        """
        ...

    async def destroy(self, tenant: str, subject: str) -> int:
        """Destroy every data key of the subject; returns how many were still alive."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
