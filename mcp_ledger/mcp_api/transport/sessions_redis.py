"""Transport sessions in Redis: a hash per session whose key expires after the idle TTL, and
a set per subject naming its sessions (for erasure).

Keys: {prefix}mcp-session:{id} (fields tenant, subject, log_level, extensions (a JSON list of
the extension ids declared at initialize), and `sub:{uri}` per
resource subscription, so subscriptions expire and end with their session) and
{prefix}mcp-subject:{tenant}:{subject}. The index expires with the subject's most recently
used session (every touch slides both), so it never outlives what it lists for long.
"""

from __future__ import annotations

import json
import math
from typing import Any

from redis.asyncio import Redis

from mcp_ledger.mcp_api.transport.sessions import MAX_SUBSCRIPTIONS, TransportSession

# Sets a field of a live session only, keeping its TTL.
_SET_IF_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0
"""
# Adds a subscription field to a live session holding fewer than ARGV[2] of them; 1 if it holds it.
_SUBSCRIBE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local held = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 4) == 'sub:' then held = held + 1 end
end
if held >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1
"""
# Slides the session and its subject's index; returns the session's fields (empty: gone).
_TOUCH = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return fields end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local found = {}
for i = 1, #fields, 2 do found[fields[i]] = fields[i + 1] end
redis.call('PEXPIRE', ARGV[2] .. found['tenant'] .. ':' .. found['subject'], ARGV[1])
return fields
"""
# Deletes every session the subject's index lists, then the index; returns sessions deleted.
_END_SUBJECT = """
local ended = 0
for _, session_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', ARGV[1] .. session_id)
end
redis.call('DEL', KEYS[1])
return ended
"""


class RedisTransportSessions:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._touch: Any = client.register_script(_TOUCH)
        self._end_subject: Any = client.register_script(_END_SUBJECT)
        self._subscribe: Any = client.register_script(_SUBSCRIBE)

    @classmethod
    def from_url(cls, url: str, prefix: str) -> RedisTransportSessions:
        return cls(Redis.from_url(url), prefix)

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}mcp-session:{session_id}"

    def _subject_key(self, tenant: str, subject: str) -> str:
        return f"{self._prefix}mcp-subject:{tenant}:{subject}"

    async def create(self, session: TransportSession, ttl: float) -> None:
        key, index = self._key(session.session_id), self._subject_key(session.tenant, session.subject)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"tenant": session.tenant, "subject": session.subject})
            pipe.pexpire(key, math.ceil(ttl * 1000))
            pipe.sadd(index, session.session_id)
            pipe.pexpire(index, math.ceil(ttl * 1000))
            await pipe.execute()

    async def touch(self, session_id: str, ttl: float) -> TransportSession | None:
        raw = await self._touch(
            keys=[self._key(session_id)], args=[math.ceil(ttl * 1000), f"{self._prefix}mcp-subject:"]
        )
        if not raw:
            return None
        fields = dict(zip(raw[::2], raw[1::2], strict=True))
        return TransportSession(session_id, fields[b"tenant"].decode(), fields[b"subject"].decode())

    async def end(self, session_id: str) -> None:
        await self._client.delete(self._key(session_id))

    async def set_log_level(self, session_id: str, level: str) -> None:
        await self._client.eval(_SET_IF_LIVE, 1, self._key(session_id), "log_level", level)

    async def log_level(self, session_id: str) -> str | None:
        value = await self._client.hget(self._key(session_id), "log_level")
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set_extensions(self, session_id: str, extensions: frozenset[str]) -> None:
        listed = json.dumps(sorted(extensions))
        await self._client.eval(_SET_IF_LIVE, 1, self._key(session_id), "extensions", listed)

    async def extensions(self, session_id: str) -> frozenset[str]:
        value = await self._client.hget(self._key(session_id), "extensions")
        if value is None:
            return frozenset()
        listed = json.loads(value)
        return frozenset(str(item) for item in listed) if isinstance(listed, list) else frozenset()

    async def subscribe(self, session_id: str, uri: str) -> bool:
        held = await self._subscribe(keys=[self._key(session_id)], args=[f"sub:{uri}", MAX_SUBSCRIPTIONS])
        return bool(held)

    async def unsubscribe(self, session_id: str, uri: str) -> None:
        await self._client.hdel(self._key(session_id), f"sub:{uri}")

    async def subscribed(self, session_id: str, uri: str) -> bool:
        return bool(await self._client.hexists(self._key(session_id), f"sub:{uri}"))

    async def end_subject(self, tenant: str, subject: str) -> int:
        keys = [self._subject_key(tenant, subject)]
        return int(await self._end_subject(keys=keys, args=[self._key("")]))

    async def close(self) -> None:
        await self._client.aclose()
