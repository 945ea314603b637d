"""The epoch marker of an in-process state store: it lives exactly as long as the process's
views, so only a restart (or `forget`, which is what one does to it) loses it. The embedded
gateway needs no state-loss watch (its views die with it); this adapter is the port's
in-memory implementation, held to the same contract as the Redis one."""

from __future__ import annotations


class MemoryEpochMarker:
    def __init__(self) -> None:
        self._epoch: str | None = None

    async def read(self) -> str | None:
        return self._epoch

    async def claim(self, epoch: str) -> str:
        if self._epoch is None:
            self._epoch = epoch
        return self._epoch

    def forget(self) -> None:
        """Lose the marker, as the state store losing its data would."""
        self._epoch = None

    async def close(self) -> None:
        return None
