"""The key store port: per-subject data keys, kept apart from the events they protect.

A subject has at most one active data key. Destroying a subject's keys is crypto-shredding:
everything sealed with them becomes unreadable for good. After that a subject that comes back
gets a new key; its old data stays unreadable. `KeyScopes` is what makes that safe for work
in flight: a unit of work pins the key it found first, so data it read before an erasure is
never sealed again under the new key.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol


class KeyStoreError(Exception):
    """Base class of the key store's errors."""


class KeyDestroyedError(KeyStoreError):
    """The data key was destroyed (the subject was erased) or never existed."""


class KekMismatchError(KeyStoreError):
    """This process's KEK ring cannot unwrap a stored data key: the processes of a deployment
    were given different KEKs (LEDGER_KEK, LEDGER_KEK_FILE or the data directory's file), or
    a KEK was dropped from the ring while keys were still wrapped by it."""


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

    async def current_key(self, tenant: str, subject: str) -> DataKey | None:
        """The subject's active data key, or None when it has none (nothing is created)."""
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


class KeyScopes(Protocol):
    """Units of work with pinned keys (implemented by the process's key cache)."""

    def unit(self) -> AbstractContextManager[None]:
        """Everything inside (tasks it starts included) is one unit of work: the first key
        it meets for a subject is the only key it seals that subject's data with. Nested
        units belong to the outermost one."""
        ...

    async def pin(self, tenant: str, subject: str) -> str | None:
        """Pin the subject's key in the current unit now (before reading anything of theirs);
        returns its id, None when the subject has no live key or there is no unit."""
        ...
