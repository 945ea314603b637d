"""The in-process rate limiter of the embedded gateway: GCRA over a dict.

Owns bucket state for one process only; deliberately not shared, so a deployment with
several API replicas must use the Redis limiter (bootstrap picks it with LEDGER_STATE).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence

from mcp_ledger.limits.policy import Bucket, Verdict, gcra_wait
from mcp_ledger.limits.ports import RefusalCount

HOUR = 3600


def hour_of(timestamp: float) -> str:
    """The UTC hour a refusal is counted in, "YYYYMMDDHH"."""
    return time.strftime("%Y%m%d%H", time.gmtime(timestamp))


class MemoryRateLimiter:
    def __init__(self, *, refusal_ttl: float = 7 * 86400.0, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._refusals: dict[tuple[str, str], Counter[tuple[str, str]]] = {}
        self._refusal_ttl = refusal_ttl
        self._lock = asyncio.Lock()

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        async with self._lock:
            now = self._clock()
            self._forget_idle(now)
            waits = [(gcra_wait(self._tats.get(b.key, now), now, b.limit), b) for b in buckets]
            worst = max(waits, key=lambda pair: pair[0], default=(0.0, None))
            if worst[0] > 0:
                return Verdict(False, worst[0], worst[1])
            for bucket in buckets:
                self._tats[bucket.key] = max(self._tats.get(bucket.key, now), now) + bucket.limit.interval
            return Verdict(True)

    def _forget_idle(self, now: float) -> None:
        # A bucket whose tat has passed is as good as new: drop it so idle callers cost nothing.
        if len(self._tats) > 10_000:
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}

    async def record_refusal(self, tenant: str, subject: str, scope: str) -> None:
        now = self._clock()
        self._refusals.setdefault((tenant, hour_of(now)), Counter())[(scope, subject)] += 1
        oldest = hour_of(now - self._refusal_ttl)
        for key in [key for key in self._refusals if key[1] < oldest]:
            del self._refusals[key]

    async def refusals(self, tenant: str, hours: int) -> list[RefusalCount]:
        now = self._clock()
        found = []
        for back in range(hours - 1, -1, -1):
            hour = hour_of(now - back * HOUR)
            for (scope, subject), refused in sorted(self._refusals.get((tenant, hour), Counter()).items()):
                found.append(RefusalCount(hour, subject, scope, refused))
        return found

    async def close(self) -> None:
        return None
