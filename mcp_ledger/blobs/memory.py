"""In-process replay guard: the embedded default (one process sees every read)."""

from __future__ import annotations

import time


class MemoryReplayGuard:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[str, float] = {}
        self._max_entries = max_entries

    async def first_use(self, nonce: str, ttl: float) -> bool:
        now = time.monotonic()
        if len(self._seen) >= self._max_entries:
            self._seen = {n: until for n, until in self._seen.items() if until > now}
        until = self._seen.get(nonce)
        if until is not None and until > now:
            return False
        self._seen[nonce] = now + ttl
        return True

    async def close(self) -> None:
        return None
