"""The epoch marker contract on real Redis, plus what only Redis shows: the marker never
expires on its own, and deployments with other key prefixes have markers of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from mcp_ledger.projections.state_loss import EpochMarker
from mcp_ledger.projections.state_loss_redis import RedisEpochMarker
from tests.contracts.epoch_marker_contract import EpochMarkerContract, Loss, Markers

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(services_env: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(services_env["LEDGER_STATE"])
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis, unique: str) -> AsyncIterator[str]:
    """The test's key prefix; its keys (markers have no TTL) are deleted after it."""
    yield f"epoch-{unique}:"
    if keys := [key async for key in redis.scan_iter(match=f"epoch-{unique}:*")]:
        await redis.delete(*keys)


@pytest.fixture
async def open_marker(services_env: dict[str, str]) -> AsyncIterator[Callable[[str], EpochMarker]]:
    """Opens markers (each with its own connection, as each worker has); closes them after."""
    made: list[RedisEpochMarker] = []

    def open_one(prefix: str) -> EpochMarker:
        made.append(RedisEpochMarker.from_url(services_env["LEDGER_STATE"], prefix))
        return made[-1]

    yield open_one
    for marker in made:
        await marker.close()


class TestRedisEpochMarker(EpochMarkerContract):
    @pytest.fixture
    def markers(self, open_marker: Callable[[str], EpochMarker], prefix: str) -> Markers:
        return lambda: open_marker(prefix)

    @pytest.fixture
    def lose_the_data(self, redis: Redis, prefix: str) -> Loss:
        async def lose() -> None:  # what a restart without persistence does to these keys
            if keys := [key async for key in redis.scan_iter(match=f"{prefix}*")]:
                await redis.delete(*keys)

        return lose


async def test_the_marker_has_no_ttl_and_other_prefixes_have_their_own(
    open_marker: Callable[[str], EpochMarker], redis: Redis, prefix: str
) -> None:
    assert await open_marker(prefix).claim("ours") == "ours"
    assert await redis.ttl(f"{prefix}state-epoch") == -1  # -1: kept until the data goes
    other = open_marker(f"{prefix}other:")
    assert await other.read() is None
    assert await other.claim("theirs") == "theirs"
