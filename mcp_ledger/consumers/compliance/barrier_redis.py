"""The erasure barrier across processes, through Redis (every API replica and worker).

Each process is a member: it renews `{prefix}replicas` (a sorted set scored by the expiry of
its lease, in Redis time) every `heartbeat` seconds and listens on `{prefix}erasures`. An
erasure publishes its subject there until every live member has answered in
`{prefix}erasure:{id}:dropped`; a member answers after `SubjectCaches.drop`. Requests are
published again while answers are missing, so a member that joined late or reconnected
hears them too.

A member that cannot renew its lease or lost its subscription switches its caches off (so
the erasures that no longer wait for it find nothing cached there) and on again once both
work. Residual risk: a process frozen for longer than its lease may use its caches for a
moment after it resumes, before its next renewal notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections import OrderedDict
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mcp_ledger.consumers.compliance.barrier import BarrierError, SubjectCaches

log = logging.getLogger(__name__)

_RENEW = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return now
"""
_LIVE = """
local now = tonumber(redis.call('TIME')[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""
_ANSWER_TTL = 86400
_REPUBLISH = 0.5
_POLL = 0.05
_FIRST_TRY = 5.0


class RedisBarrier:
    """ErasureBarrier and barrier membership of one process."""

    def __init__(
        self,
        client: Redis,
        prefix: str,
        caches: SubjectCaches,
        *,
        heartbeat: float = 2.0,
        lease: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        self._redis = client
        self._members, self._channel = f"{prefix}replicas", f"{prefix}erasures"
        self._answers = f"{prefix}erasure:"
        self._caches = caches
        self._heartbeat, self._lease, self._timeout = heartbeat, lease, timeout
        self.replica_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew: Any = client.register_script(_RENEW)
        self._live: Any = client.register_script(_LIVE)
        self._tasks: list[asyncio.Task[None]] = []
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._listening = self._renewed = False
        self._tried = asyncio.Event()

    @classmethod
    def from_url(cls, url: str, prefix: str, caches: SubjectCaches, **options: float) -> RedisBarrier:
        return cls(Redis.from_url(url), prefix, caches, **options)

    async def start(self) -> None:
        """Subscribe, take a lease, and keep both up in the background; returns after the
        first attempt to subscribe (caching stays off until both work)."""
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._keep_lease())]
        with contextlib.suppress(TimeoutError):  # an unanswering host: go on, caching off
            async with asyncio.timeout(_FIRST_TRY):
                await self._tried.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.zrem(self._members, self.replica_id)
        await self._redis.aclose()

    async def cross(self, tenant: str, subject: str, erasure_id: str) -> int:
        request = json.dumps({"tenant": tenant, "subject": subject, "erasure_id": erasure_id})
        answers = f"{self._answers}{erasure_id}:dropped"
        loop = asyncio.get_running_loop()
        deadline, published = loop.time() + self._timeout, float("-inf")
        try:
            while True:
                if loop.time() - published >= _REPUBLISH:
                    await self._redis.publish(self._channel, request)
                    published = loop.time()
                live = {_text(m) for m in await self._live(keys=[self._members])}
                answered = {_text(m) for m in await self._redis.smembers(answers)}
                if live <= answered:
                    return len(live)
                if loop.time() > deadline:
                    missing = ", ".join(sorted(live - answered))
                    raise BarrierError(f"erasure {erasure_id}: no confirmation from {missing} in time")
                await asyncio.sleep(_POLL)
        except (RedisError, OSError) as error:
            raise BarrierError(f"erasure {erasure_id}: Redis is unreachable: {error}") from error

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._set(listening=True)
                    self._tried.set()
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if message is not None:
                            self._tasks.append(asyncio.create_task(self._answer(message["data"])))
                            self._tasks = [task for task in self._tasks if not task.done()]
            except (RedisError, OSError):
                self._set(listening=False)
                self._tried.set()
                log.warning("erasure barrier: lost the subscription to %s; retrying", self._channel)
                await asyncio.sleep(1.0)

    async def _answer(self, raw: bytes | str) -> None:
        try:
            request = json.loads(raw)
            tenant, subject, erasure_id = request["tenant"], request["subject"], request["erasure_id"]
        except (ValueError, KeyError, TypeError):
            log.error("erasure barrier: dropping a malformed request")
            return
        if erasure_id not in self._handled:
            try:
                await self._caches.drop(tenant, subject)
            except BarrierError as error:  # unanswered: the erasure asks again, or fails in time
                log.error("erasure barrier: %s", error)
                return
            self._handled[erasure_id] = None
            while len(self._handled) > 1000:
                self._handled.popitem(last=False)
        answers = f"{self._answers}{erasure_id}:dropped"
        try:
            await self._redis.sadd(answers, self.replica_id)
            await self._redis.expire(answers, _ANSWER_TTL)
        except (RedisError, OSError):
            log.warning("erasure barrier: could not confirm erasure %s; it will ask again", erasure_id)

    async def _keep_lease(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            if loop.time() - last > self._lease / 2:
                self._caches.set_caching(False)  # frozen or cut off long enough to have lost the lease
            try:
                await self._renew(keys=[self._members], args=[self.replica_id, self._lease])
                last = loop.time()
                self._set(renewed=True)
            except (RedisError, OSError):
                self._set(renewed=False)
                log.warning("erasure barrier: cannot renew this process's lease in Redis")
            await asyncio.sleep(self._heartbeat)

    def _set(self, *, listening: bool | None = None, renewed: bool | None = None) -> None:
        self._listening = self._listening if listening is None else listening
        self._renewed = self._renewed if renewed is None else renewed
        self._caches.set_caching(self._listening and self._renewed)


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
