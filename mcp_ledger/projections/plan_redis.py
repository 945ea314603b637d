"""Plan views in Redis: one hash per plan, a set per subject, CAS by a Lua script.

Keys: {prefix}tenant:{tenant}:plan:{id} (fields `pos` and `view`) and
{prefix}tenant:{tenant}:subject:{subject}:plans.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from mcp_ledger.projections.plan_view import PlanView

_CAS = """
local current = redis.call('HGET', KEYS[1], 'pos') or '0'
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pos', ARGV[2], 'view', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""


class RedisPlanViewStore:
    """Plan views shared by every API replica."""

    def __init__(self, client: Redis, *, prefix: str = "ledger:") -> None:
        self._redis = client
        self._prefix = prefix
        self._cas: Any = client.register_script(_CAS)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "ledger:") -> RedisPlanViewStore:
        """A store on a redis:// URL (connects lazily)."""
        return cls(Redis.from_url(url), prefix=prefix)

    def _plan_key(self, tenant: str, plan_id: str) -> str:
        return f"{self._prefix}tenant:{tenant}:plan:{plan_id}"

    def _subject_key(self, tenant: str, subject: str) -> str:
        return f"{self._prefix}tenant:{tenant}:subject:{subject}:plans"

    async def get(self, tenant: str, plan_id: str) -> PlanView | None:
        raw = await self._redis.hget(self._plan_key(tenant, plan_id), "view")
        return None if raw is None else PlanView.model_validate_json(raw)

    async def compare_and_set(self, view: PlanView, expected_position: int) -> bool:
        keys = [self._plan_key(view.tenant, view.plan_id), self._subject_key(view.tenant, view.subject)]
        args = [str(expected_position), str(view.last_position), view.model_dump_json(), view.plan_id]
        return bool(await self._cas(keys=keys, args=args))

    async def plans_of(self, tenant: str, subject: str) -> list[str]:
        members = await self._redis.smembers(self._subject_key(tenant, subject))
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def clear(self) -> None:
        for pattern in ("tenant:*:plan:*", "tenant:*:subject:*:plans"):
            async for key in self._redis.scan_iter(match=f"{self._prefix}{pattern}", count=500):
                await self._redis.delete(key)

    async def close(self) -> None:
        await self._redis.aclose()
