"""Charging one execution to a caller: the policy's buckets, the limiter, and what a refusal says.

One `RateAdmission` per process serves every place an execution starts: the API's MCP
edge, MCPToolService (HTTP, gRPC, pipeline stages), a new MCP session, and the worker's plan
executor (each task attempt). Embedded, the API and the worker share the one instance, so
they share the buckets; distributed, every process's instance draws from Redis.

Fails open: while the shared state is unreachable a call is admitted (and logged), because
refusing everyone would turn a Redis outage into a full outage; the limit protects capacity,
not correctness. Refusals are counted for operators and auditors (`mcp-ledger rate
refusals`), never appended to the event store: a flood must not become a flood of writes.
Deliberately knows no transport: each caller maps a refusal to its own error.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from mcp_ledger.limits.policy import RatePolicy, Verdict
from mcp_ledger.limits.ports import LimiterUnavailableError, RateLimiter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused execution: when to retry, which bucket refused, and a sentence saying so."""

    retry_after: float
    scope: str
    limit: str
    message: str

    def data(self) -> dict[str, object]:
        """The machine-readable part every transport sends (JSON-RPC error data)."""
        return {"retry_after_seconds": self.retry_after, "scope": self.scope, "limit": self.limit}


def refusal_of(verdict: Verdict) -> Refusal:
    """The refusal a denying verdict means."""
    assert verdict.refused_by is not None
    bucket = verdict.refused_by
    retry_after = math.ceil(verdict.retry_after * 1000) / 1000
    message = (
        f"rate limit exceeded: at most {bucket.limit.count} calls per {bucket.limit.seconds:g} s "
        f"for this {bucket.scope}; retry after {retry_after:.3f} s"
    )
    return Refusal(retry_after, bucket.scope, str(bucket.limit), message)


class RateAdmission:
    """Takes one execution of a (tenant, subject) from the policy's buckets."""

    def __init__(self, policy: RatePolicy, limiter: RateLimiter) -> None:
        self._policy = policy
        self._limiter = limiter

    async def take(self, tenant: str, subject: str) -> Refusal | None:
        """Charge one execution; None when it may go ahead, else why not."""
        buckets = self._policy.buckets(tenant, subject)
        if not buckets:
            return None
        try:
            verdict = await self._limiter.acquire(buckets)
        except LimiterUnavailableError as error:
            log.warning("rate limiter unavailable, execution admitted: %s", error)
            return None
        if verdict.allowed or verdict.refused_by is None:
            return None
        scope = verdict.refused_by.scope
        try:
            await self._limiter.record_refusal(tenant, subject, scope)
        except LimiterUnavailableError as error:
            log.warning("refusal not counted: %s", error)
        log.info("rate limited: tenant %s, %s limit %s", tenant, scope, verdict.refused_by.limit)
        return refusal_of(verdict)

    async def close(self) -> None:
        await self._limiter.close()
