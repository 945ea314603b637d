"""Transport sessions in Redis: a hash per session whose key expires after the idle TTL."""

from __future__ import annotations

import math

from redis.asyncio import Redis

from mcp_ledger.mcp_api.transport_sessions import TransportSession

_SET_IF_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""


class RedisTransportSessions:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisTransportSessions:
        return cls(Redis.from_url(url), prefix)

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}mcp-session:{session_id}"

    async def create(self, session: TransportSession, ttl: float) -> None:
        key = self._key(session.session_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"tenant": session.tenant, "subject": session.subject})
            pipe.pexpire(key, math.ceil(ttl * 1000))
            await pipe.execute()

    async def touch(self, session_id: str, ttl: float) -> TransportSession | None:
        key = self._key(session_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.pexpire(key, math.ceil(ttl * 1000))
            fields, _ = await pipe.execute()
        if not fields:
            return None
        return TransportSession(session_id, fields[b"tenant"].decode(), fields[b"subject"].decode())

    async def end(self, session_id: str) -> None:
        await self._client.delete(self._key(session_id))

    async def set_log_level(self, session_id: str, level: str) -> None:
        # HSETEX-free: only a live session (key exists) gets the field, keeping its TTL.
        await self._client.eval(_SET_IF_LIVE, 1, self._key(session_id), "log_level", level)

    async def log_level(self, session_id: str) -> str | None:
        value = await self._client.hget(self._key(session_id), "log_level")
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def close(self) -> None:
        await self._client.aclose()
