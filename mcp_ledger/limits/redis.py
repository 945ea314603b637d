"""The shared rate limiter: GCRA in one Lua script, so every API replica draws from the
same buckets atomically, on the Redis server's clock (replicas' clocks may disagree).

Keys live under the state prefix: `{prefix}rate:{bucket}` holds a bucket's theoretical
arrival time and expires when the bucket is full again; `{prefix}rate-refused:{tenant}:{hour}`
is a hash of refusal counts kept `refusal_ttl` seconds. Deliberately no local caching: a
limit is only as good as its shared state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from mcp_ledger.limits.memory import HOUR, hour_of
from mcp_ledger.limits.policy import Bucket, Verdict
from mcp_ledger.limits.ports import LimiterUnavailableError, RefusalCount

POOL_SIZE = 32
POOL_WAIT_SECONDS = 5.0

# KEYS: bucket keys. ARGV: interval and period of each bucket, in KEYS order.
# Returns {index of the refusing bucket (0: admitted), wait in seconds as a string}.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local new_tats = {}
local worst, worst_wait = 0, 0
for i, key in ipairs(KEYS) do
  local interval, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local wait = tat + interval - period - now
  if wait > worst_wait then worst, worst_wait = i, wait end
  new_tats[i] = tat + interval
end
if worst == 0 then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, string.format('%.6f', new_tats[i]), 'PX', math.ceil((new_tats[i] - now) * 1000))
  end
end
return {worst, string.format('%.6f', worst_wait)}
"""


class RedisRateLimiter:
    def __init__(self, client: Redis, prefix: str, *, refusal_ttl: float = 7 * 86400.0) -> None:
        self._client = client
        self._prefix = prefix
        self._refusal_ttl = refusal_ttl
        self._script = client.register_script(_GCRA)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, refusal_ttl: float = 7 * 86400.0) -> RedisRateLimiter:
        # A blocking pool: a burst of calls queues for a connection instead of failing with
        # "Too many connections", which would make the limiter fail open exactly under load.
        pool = BlockingConnectionPool.from_url(url, max_connections=POOL_SIZE, timeout=POOL_WAIT_SECONDS)
        return cls(Redis(connection_pool=pool), prefix, refusal_ttl=refusal_ttl)

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        if not buckets:
            return Verdict(True)
        keys = [f"{self._prefix}rate:{bucket.key}" for bucket in buckets]
        args = [value for b in buckets for value in (repr(b.limit.interval), repr(b.limit.seconds))]
        try:
            index, wait = await self._script(keys=keys, args=args)
        except RedisError as error:
            raise LimiterUnavailableError(str(error)) from error
        if int(index) == 0:
            return Verdict(True)
        return Verdict(False, float(wait), buckets[int(index) - 1])

    def _refusal_key(self, tenant: str, hour: str) -> str:
        return f"{self._prefix}rate-refused:{tenant}:{hour}"

    async def record_refusal(self, tenant: str, subject: str, scope: str) -> None:
        key = self._refusal_key(tenant, hour_of(time.time()))
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, f"{scope}|{subject}", 1)
                pipe.expire(key, max(1, math.ceil(self._refusal_ttl)))
                await pipe.execute()
        except RedisError as error:
            raise LimiterUnavailableError(str(error)) from error

    async def refusals(self, tenant: str, hours: int) -> list[RefusalCount]:
        now = time.time()
        hour_names = [hour_of(now - back * HOUR) for back in range(hours - 1, -1, -1)]
        async with self._client.pipeline(transaction=False) as pipe:
            for hour in hour_names:
                pipe.hgetall(self._refusal_key(tenant, hour))
            counts = await pipe.execute()
        found = []
        for hour, fields in zip(hour_names, counts, strict=True):
            for field, refused in sorted(fields.items()):
                scope, _, subject = field.decode().partition("|")
                found.append(RefusalCount(hour, subject, scope, int(refused)))
        return found

    async def close(self) -> None:
        await self._client.aclose(close_connection_pool=True)
