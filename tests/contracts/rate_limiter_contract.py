"""One contract for every RateLimiter: memory in unit tests, Redis in integration."""

from __future__ import annotations

import asyncio
import time

import pytest

from mcp_ledger.limits.policy import Bucket, Limit
from mcp_ledger.limits.ports import RateLimiter


def bucket(key: str, count: int, seconds: float, scope: str = "subject") -> Bucket:
    return Bucket(key, Limit(count, seconds), scope)


class RateLimiterContract:
    """Subclasses provide a fresh `limiter` fixture with keys nobody else uses."""

    @pytest.fixture
    def limiter(self) -> RateLimiter:
        raise NotImplementedError

    async def test_a_burst_up_to_the_limit_is_admitted_and_the_next_call_waits_one_interval(
        self, limiter: RateLimiter
    ) -> None:
        alice = [bucket("subject:acme:alice", 3, 60)]
        admitted = [(await limiter.acquire(alice)).allowed for _ in range(3)]
        refused = await limiter.acquire(alice)
        assert admitted == [True, True, True]
        assert not refused.allowed
        assert refused.refused_by == alice[0]
        assert 19.0 < refused.retry_after <= 20.0

    async def test_a_refused_call_takes_nothing_from_the_other_buckets(self, limiter: RateLimiter) -> None:
        tenant = bucket("tenant:acme", 2, 60, "tenant")
        alice, bob = bucket("subject:acme:alice", 1, 60), bucket("subject:acme:bob", 1, 60)
        assert (await limiter.acquire([tenant, alice])).allowed
        assert not (await limiter.acquire([tenant, alice])).allowed
        assert (await limiter.acquire([tenant, bob])).allowed

    async def test_the_verdict_names_the_bucket_that_makes_the_caller_wait_longest(
        self, limiter: RateLimiter
    ) -> None:
        tenant, alice = bucket("tenant:acme", 1, 600, "tenant"), bucket("subject:acme:alice", 1, 60)
        assert (await limiter.acquire([tenant, alice])).allowed
        verdict = await limiter.acquire([alice, tenant])
        assert verdict.refused_by == tenant
        assert 599.0 < verdict.retry_after <= 600.0

    async def test_different_keys_are_limited_independently(self, limiter: RateLimiter) -> None:
        assert (await limiter.acquire([bucket("subject:acme:alice", 1, 60)])).allowed
        assert (await limiter.acquire([bucket("subject:other:alice", 1, 60)])).allowed

    async def test_concurrent_calls_never_get_past_the_limit(self, limiter: RateLimiter) -> None:
        shared = [bucket("tenant:busy", 10, 60, "tenant")]
        verdicts = await asyncio.gather(*(limiter.acquire(shared) for _ in range(40)))
        assert sum(v.allowed for v in verdicts) == 10

    async def test_a_refused_caller_is_admitted_again_once_the_wait_is_over(
        self, limiter: RateLimiter
    ) -> None:
        quick = [bucket("subject:acme:quick", 1, 0.2)]
        assert (await limiter.acquire(quick)).allowed
        refused = await limiter.acquire(quick)
        assert not refused.allowed
        assert 0 < refused.retry_after <= 0.2
        deadline = time.monotonic() + 2.0
        while not (await limiter.acquire(quick)).allowed:
            assert time.monotonic() < deadline, "the bucket never refilled"
            await asyncio.sleep(0.02)

    async def test_no_buckets_means_no_limit(self, limiter: RateLimiter) -> None:
        assert all([(await limiter.acquire([])).allowed for _ in range(5)])

    async def test_refusals_are_counted_per_subject_and_scope(self, limiter: RateLimiter) -> None:
        for _ in range(3):
            await limiter.record_refusal("acme", "alice", "subject")
        await limiter.record_refusal("acme", "bob", "tenant")
        await limiter.record_refusal("other", "carol", "subject")
        counts = {(c.subject, c.scope): c.refused for c in await limiter.refusals("acme", hours=2)}
        assert counts == {("alice", "subject"): 3, ("bob", "tenant"): 1}
