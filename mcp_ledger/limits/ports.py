"""The rate limiter port: take one call from several buckets at once, all or nothing, and
count refusals for operators and auditors.

Deliberately not here: which buckets a caller has (policy.py) and what the API answers
(mcp_api/rate_limits.py). Adapters: memory.py (embedded, one process) and redis.py (shared
by every API replica).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mcp_ledger.limits.policy import Bucket, Verdict


@dataclass(frozen=True, slots=True)
class RefusalCount:
    """How many calls of one subject one scope refused in one hour (UTC, "YYYYMMDDHH")."""

    hour: str
    subject: str
    scope: str
    refused: int


class LimiterUnavailableError(Exception):
    """The limiter's shared state cannot be reached."""


class RateLimiter(Protocol):
    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Take one call from every bucket, or from none if any is empty; the verdict of a
        refusal names the bucket that makes the caller wait longest.

        Raises:
            LimiterUnavailableError: the shared state is unreachable.
        """
        ...

    async def record_refusal(self, tenant: str, subject: str, scope: str) -> None:
        """Count one refused call (kept for `refusal_ttl` seconds)."""
        ...

    async def refusals(self, tenant: str, hours: int) -> list[RefusalCount]:
        """The tenant's refusal counts of the last `hours` hours, oldest first."""
        ...

    async def close(self) -> None: ...
