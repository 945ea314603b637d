"""One-time pointer tracking in Redis: SET NX with the pointer's remaining lifetime, so every
API replica agrees on the first read and the record disappears when the pointer expires."""

from __future__ import annotations

import math

from redis.asyncio import Redis


class RedisReplayGuard:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisReplayGuard:
        return cls(Redis.from_url(url), prefix)

    async def first_use(self, nonce: str, ttl: float) -> bool:
        stored = await self._client.set(
            f"{self._prefix}pointer-used:{nonce}", b"1", nx=True, ex=max(1, math.ceil(ttl))
        )
        return bool(stored)

    async def close(self) -> None:
        await self._client.aclose()
