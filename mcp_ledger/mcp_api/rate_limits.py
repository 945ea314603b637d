"""The API's rate-limit check: before a tool call becomes a command, take it from the
caller's tenant and subject buckets, or refuse it with a JSON-RPC error saying when to retry.

A refusal is counted (limits/ports.RateLimiter.record_refusal: per tenant, hour, subject and
scope) and logged, but deliberately not appended to the event store: a client flooding the
gateway would otherwise turn every refused call into a write, the very load the limit exists
to shed. The counts are what auditors read (`mcp-ledger rate refusals`).
"""

from __future__ import annotations

import logging
import math

from mcp.shared.exceptions import MCPError

from mcp_ledger.limits.policy import RatePolicy, Verdict
from mcp_ledger.limits.ports import LimiterUnavailableError, RateLimiter
from mcp_ledger.mcp_api.auth.identity import Identity

log = logging.getLogger(__name__)

RATE_LIMITED = -32029
"""JSON-RPC error code of a refused call: implementation-defined server error range, 429-like."""


def rate_limited_error(verdict: Verdict) -> MCPError:
    """The JSON-RPC error for a refusal: message and data both say when to retry."""
    assert verdict.refused_by is not None
    bucket = verdict.refused_by
    retry_after = math.ceil(verdict.retry_after * 1000) / 1000
    message = (
        f"rate limit exceeded: at most {bucket.limit.count} calls per {bucket.limit.seconds:g} s "
        f"for this {bucket.scope}; retry after {retry_after:.3f} s"
    )
    data = {"retry_after_seconds": retry_after, "scope": bucket.scope, "limit": str(bucket.limit)}
    return MCPError(RATE_LIMITED, message, data)


class RateGuard:
    """Checks one call of an identity against the policy."""

    def __init__(self, policy: RatePolicy, limiter: RateLimiter) -> None:
        self._policy = policy
        self._limiter = limiter

    async def admit(self, identity: Identity) -> None:
        """Take one call for this caller.

        Raises:
            MCPError: RATE_LIMITED, with data {retry_after_seconds, scope, limit}.
        """
        buckets = self._policy.buckets(identity.tenant, identity.subject)
        if not buckets:
            return
        try:
            verdict = await self._limiter.acquire(buckets)
        except LimiterUnavailableError as error:
            # Fail open: while the shared state is down, refusing everyone would turn a Redis
            # outage into a full outage; the limit protects capacity, not correctness.
            log.warning("rate limiter unavailable, call admitted: %s", error)
            return
        if verdict.allowed or verdict.refused_by is None:
            return
        scope = verdict.refused_by.scope
        try:
            await self._limiter.record_refusal(identity.tenant, identity.subject, scope)
        except LimiterUnavailableError as error:
            log.warning("refusal not counted: %s", error)
        log.info("rate limited: tenant %s, %s limit %s", identity.tenant, scope, verdict.refused_by.limit)
        raise rate_limited_error(verdict)
