"""The rate limiter contract on the in-process limiter, plus its clock-driven behaviour."""

from __future__ import annotations

import pytest

from mcp_ledger.limits.memory import MemoryRateLimiter
from mcp_ledger.limits.ports import RateLimiter
from tests.contracts.rate_limiter_contract import RateLimiterContract, bucket


class TestMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self) -> RateLimiter:
        return MemoryRateLimiter()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_steady_caller_at_the_limit_is_never_refused() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    alice = [bucket("subject:acme:alice", 5, 10)]
    verdicts = []
    for _ in range(50):
        verdicts.append((await limiter.acquire(alice)).allowed)
        clock.now += 2.0
    assert all(verdicts)


async def test_refusal_counts_older_than_their_lifetime_are_forgotten() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock, refusal_ttl=3600)
    await limiter.record_refusal("acme", "alice", "subject")
    clock.now += 3 * 3600
    await limiter.record_refusal("acme", "bob", "subject")
    assert [(c.subject, c.refused) for c in await limiter.refusals("acme", hours=24)] == [("bob", 1)]
