"""The replay guard contract on real Redis, plus what only a shared guard shows: API replicas
agree on the first read, and deployments with other key prefixes do not see each other."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from mcp_ledger.blobs.ports import ReplayGuard
from mcp_ledger.blobs.redis import RedisReplayGuard
from tests.contracts.replay_guard_contract import ReplayGuardContract, nonce

pytestmark = pytest.mark.integration


@pytest.fixture
async def prefix(services_env: dict[str, str], unique: str) -> AsyncIterator[str]:
    """The test's key prefix; its keys are deleted after it (they would expire anyway)."""
    yield f"guard-{unique}:"
    client = Redis.from_url(services_env["LEDGER_STATE"])
    try:
        if keys := [key async for key in client.scan_iter(match=f"guard-{unique}:*")]:
            await client.delete(*keys)
    finally:
        await client.aclose()


class TestRedisReplayGuard(ReplayGuardContract):
    @pytest.fixture
    async def guard(self, services_env: dict[str, str], prefix: str) -> AsyncIterator[ReplayGuard]:
        opened = RedisReplayGuard.from_url(services_env["LEDGER_STATE"], prefix)
        yield opened
        await opened.close()


async def test_two_replicas_agree_on_the_first_read_and_other_prefixes_are_apart(
    services_env: dict[str, str], prefix: str
) -> None:
    url = services_env["LEDGER_STATE"]
    first, second = RedisReplayGuard.from_url(url, prefix), RedisReplayGuard.from_url(url, prefix)
    elsewhere = RedisReplayGuard.from_url(url, f"{prefix}elsewhere:")
    try:
        used = nonce()
        assert await first.first_use(used, 60)
        assert not await second.first_use(used, 60)
        assert await elsewhere.first_use(used, 60)
    finally:
        for guard in (first, second, elsewhere):
            await guard.close()
