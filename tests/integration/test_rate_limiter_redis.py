"""The rate limiter contract on real Redis, isolated by a per-test key prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from mcp_ledger.limits.ports import RateLimiter
from mcp_ledger.limits.redis import RedisRateLimiter
from tests.contracts.rate_limiter_contract import RateLimiterContract, bucket

pytestmark = pytest.mark.integration


class TestRedisRateLimiter(RateLimiterContract):
    @pytest.fixture
    async def limiter(self, services_env: dict[str, str], unique: str) -> AsyncIterator[RateLimiter]:
        limiter = RedisRateLimiter.from_url(services_env["LEDGER_STATE"], f"test-{unique}:")
        yield limiter
        await limiter.close()
        client = Redis.from_url(services_env["LEDGER_STATE"])
        keys = [key async for key in client.scan_iter(match=f"test-{unique}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_bucket_keys_live_under_the_state_prefix_and_expire_when_full_again(
    services_env: dict[str, str], unique: str
) -> None:
    limiter = RedisRateLimiter.from_url(services_env["LEDGER_STATE"], f"test-{unique}:")
    client = Redis.from_url(services_env["LEDGER_STATE"])
    try:
        await limiter.acquire([bucket("subject:acme:alice", 10, 60)])
        ttl_ms = await client.pttl(f"test-{unique}:rate:subject:acme:alice")
        await limiter.record_refusal("acme", "alice", "subject")
        refusal_keys = [key async for key in client.scan_iter(match=f"test-{unique}:rate-refused:acme:*")]
        refusal_ttl = await client.ttl(refusal_keys[0])
    finally:
        await client.delete(*[key async for key in client.scan_iter(match=f"test-{unique}:*")])
        await client.aclose()
        await limiter.close()
    assert 0 < ttl_ms <= 6000
    assert 0 < refusal_ttl <= 7 * 86400


async def test_more_concurrent_checks_than_pooled_connections_wait_instead_of_failing_open(
    services_env: dict[str, str], unique: str
) -> None:
    limiter = RedisRateLimiter.from_url(services_env["LEDGER_STATE"], f"test-{unique}:")
    try:
        shared = [bucket("tenant:crowd", 25, 60, "tenant")]
        verdicts = await asyncio.gather(*(limiter.acquire(shared) for _ in range(300)))
    finally:
        await limiter.close()
        client = Redis.from_url(services_env["LEDGER_STATE"])
        await client.delete(f"test-{unique}:rate:tenant:crowd")
        await client.aclose()
    assert sum(v.allowed for v in verdicts) == 25
