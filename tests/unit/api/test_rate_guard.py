"""The API's rate-limit check: the error a refused caller gets, counting refusals, and
letting calls through when the shared limiter is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.limits.admission import RateAdmission
from mcp_ledger.limits.memory import MemoryRateLimiter
from mcp_ledger.limits.policy import Bucket, RatePolicy, Verdict
from mcp_ledger.limits.ports import LimiterUnavailableError, RefusalCount
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.rate_limits import RATE_LIMITED, RateGuard

ALICE = Identity(tenant="acme", subject="alice")


class Unreachable:
    """A shared limiter during an outage; counts what it was asked."""

    def __init__(self) -> None:
        self.attempts = 0

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        self.attempts += 1
        raise LimiterUnavailableError("connection refused")

    async def record_refusal(self, tenant: str, subject: str, scope: str) -> None:
        raise LimiterUnavailableError("connection refused")

    async def refusals(self, tenant: str, hours: int) -> list[RefusalCount]:
        return []

    async def close(self) -> None:
        return None


class Outage(Unreachable):
    """Unreachable while `down`; the in-memory limiter once it is back."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.back = MemoryRateLimiter()

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        if self.down:
            return await super().acquire(buckets)
        return await self.back.acquire(buckets)


async def test_a_refused_call_is_a_json_rpc_error_saying_when_to_retry_and_is_counted() -> None:
    limiter = MemoryRateLimiter()
    guard = RateGuard(RateAdmission(RatePolicy.parse("", "1/60", {}), limiter))
    await guard.admit(ALICE)
    with pytest.raises(MCPError) as refused:
        await guard.admit(ALICE)
    assert refused.value.code == RATE_LIMITED
    assert refused.value.data == {
        "retry_after_seconds": pytest.approx(60, abs=1),
        "scope": "subject",
        "limit": "1/60",
    }
    assert "retry after 6" in refused.value.message
    assert [(c.subject, c.scope, c.refused) for c in await limiter.refusals("acme", 1)] == [
        ("alice", "subject", 1)
    ]


async def test_calls_go_through_while_the_shared_limiter_is_unreachable_and_are_limited_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = Outage()
    guard = RateGuard(RateAdmission(RatePolicy.parse("1/60", "1/60", {}), limiter))
    with caplog.at_level(logging.WARNING, logger="mcp_ledger.limits.admission"):
        for _ in range(3):  # three calls against a limit of one: the limiter was asked each time
            await guard.admit(ALICE)
    assert limiter.attempts == 3
    assert [r.getMessage() for r in caplog.records] == [
        "rate limiter unavailable, execution admitted: connection refused"
    ] * 3
    limiter.down = False
    await guard.admit(ALICE)
    with pytest.raises(MCPError) as refused:
        await guard.admit(ALICE)
    assert refused.value.code == RATE_LIMITED


class Untouchable(Unreachable):
    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        raise AssertionError(f"asked for {buckets}")


async def test_a_caller_without_limits_never_touches_the_limiter() -> None:
    guard = RateGuard(RateAdmission(RatePolicy.parse("", "", {"free": "1/60"}), Untouchable()))
    await guard.admit(ALICE)
