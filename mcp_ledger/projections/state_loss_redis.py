"""The state store's epoch marker in Redis: `{prefix}state-epoch`, no TTL, so it disappears
only with the rest of the data (restart without persistence, FLUSHALL, empty replica)."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisEpochMarker:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._key = f"{prefix}state-epoch"

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisEpochMarker:
        return cls(Redis.from_url(url), prefix)

    async def read(self) -> str | None:
        value = await self._client.get(self._key)
        return None if value is None else _text(value)

    async def claim(self, epoch: str) -> str:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._key, epoch, nx=True)
            pipe.get(self._key)
            _, current = await pipe.execute()
        return _text(current)

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()
