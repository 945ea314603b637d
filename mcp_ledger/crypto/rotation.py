"""Retiring key-encryption keys: a new KEK generation that makes old wrapped copies useless.

A destroyed data key can survive where no delete reaches: PostgreSQL WAL segments and their
archives, backups of the database, blocks a filesystem freed. Each such copy is wrapped by
the KEK of its time. Rotating the KEK file (add a new KEK, rewrap every live key under it,
then drop every older KEK from the file) leaves those copies wrapped by a key that no longer
exists anywhere the deployment keeps keys.

Only a KEK file the deployment owns can be rotated this way (the data directory's `kek`, or
LEDGER_KEK_FILE when writable). A KEK given in LEDGER_KEK, or a read-only file, belongs to the
operator: this module then only says that the operator must rotate it. Rotations of one file
are serialised across processes by a lock file beside it; other processes pick up the new
file at their next key creation or lookup (KekRing re-reads a changed file), and a key
another process created under the old KEK meanwhile is rewrapped by that process itself
(SqlKeyStore) or by the rotation's second pass.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing, parse_keks, write_kek_file
from mcp_ledger.crypto.sql import SqlKeyStore

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 60.0
_LOCK_PAUSE = 0.05
_PASSES = 3


class RotationLockTimeoutError(TimeoutError):
    """Another process kept rotating the KEK file for longer than the timeout."""


class KekRotation:
    """Rotates the deployment's KEK file and retires the KEKs it held before."""

    def __init__(self, path: Path | None, keys: SqlKeyStore, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self._path = path
        self._keys = keys
        self._lock_timeout = lock_timeout

    @property
    def managed(self) -> bool:
        """Whether this deployment owns the KEK (a writable file) and can retire it."""
        return self._path is not None and os.access(self._path, os.W_OK)

    async def retire_old_keks(self) -> int:
        """Rotate to a new KEK and drop the older ones; returns how many were retired
        (0 when the KEK is the operator's: that is logged).

        Raises:
            RotationLockTimeoutError: another rotation held the file too long.
            KekError: the file holds no valid KEK.
        """
        if self._path is None or not self.managed:
            log.warning(
                "the KEK is supplied from outside (LEDGER_KEK or a read-only LEDGER_KEK_FILE): copies of "
                "destroyed data keys in backups and WAL archives stay wrapped by it until you rotate it "
                "(mcp-ledger keys rotate) and drop the old KEK"
            )
            return 0
        async with _locked(self._path.with_name(self._path.name + ".lock"), self._lock_timeout):
            return await self._rotate(self._path)

    async def _rotate(self, path: Path) -> int:
        old = parse_keks(await asyncio.to_thread(path.read_text))
        new = Kek(new_key())
        ring = KekRing([new, *old])
        write_kek_file(path, ring.keks)
        rewrapped = await self._keys.rewrap(ring)
        write_kek_file(path, [new])
        # Keys another process created under an old KEK before it re-read the file: this one
        # still holds the old KEKs in memory, so it can rewrap them after they left the file.
        for _ in range(_PASSES):
            late = await self._keys.rewrap(ring)
            rewrapped += late
            if not late:
                break
            await asyncio.sleep(_LOCK_PAUSE)
        left = {kek_id for kek_id in await self._keys.kek_ids_in_use() if kek_id != new.kek_id}
        if left:
            log.error("after the KEK rotation, keys are still wrapped by KEK %s", ", ".join(sorted(left)))
        await self._keys.scrub()
        log.info(
            "KEK rotated to %s: %d data keys rewrapped, %d KEKs retired", new.kek_id, rewrapped, len(old)
        )
        return len(old)


@asynccontextmanager
async def _locked(path: Path, seconds: float) -> AsyncIterator[None]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        async with asyncio.timeout(seconds):
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_LOCK_PAUSE)
    except TimeoutError as error:
        os.close(descriptor)
        raise RotationLockTimeoutError(f"{path} stayed locked by another KEK rotation") from error
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
