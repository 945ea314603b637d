"""Plan views in Redis: one hash per plan, a set per subject, CAS by a Lua script.

Keys: {prefix}tenant:{tenant}:plan:{id} (fields `pos` and `view`) and
{prefix}tenant:{tenant}:subject:{subject}:plans. Views hold task outputs in the clear, so they
follow the session views' retention: with a TTL (global, or the tenant's) both keys expire
that long after the plan's last change, and erasure purges a subject's plans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from mcp_ledger.projections.plan_view import PlanView

_CAS = """
local current = redis.call('HGET', KEYS[1], 'pos') or '0'
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'pos', ARGV[2], 'view', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return 1
"""
# Deletes the subject's index and every plan it lists, atomically; returns views removed.
_PURGE = """
local removed = 0
for _, plan_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  removed = removed + redis.call('DEL', ARGV[1] .. plan_id)
end
redis.call('DEL', KEYS[1])
return removed
"""


class RedisPlanViewStore:
    """Plan views shared by every API replica."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "ledger:",
        ttl: float = 0.0,
        tenant_ttl: Mapping[str, float] | None = None,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = int(ttl * 1000)
        self._tenant_ttl_ms = {tenant: int(seconds * 1000) for tenant, seconds in (tenant_ttl or {}).items()}
        self._cas: Any = client.register_script(_CAS)
        self._purge: Any = client.register_script(_PURGE)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "ledger:",
        ttl: float = 0.0,
        tenant_ttl: Mapping[str, float] | None = None,
    ) -> RedisPlanViewStore:
        """A store on a redis:// URL (connects lazily); `ttl` seconds (0: none) per view,
        `tenant_ttl` overrides it per tenant (retention)."""
        return cls(Redis.from_url(url), prefix=prefix, ttl=ttl, tenant_ttl=tenant_ttl)

    def _plan_key(self, tenant: str, plan_id: str) -> str:
        return f"{self._prefix}tenant:{tenant}:plan:{plan_id}"

    def _subject_key(self, tenant: str, subject: str) -> str:
        return f"{self._prefix}tenant:{tenant}:subject:{subject}:plans"

    async def get(self, tenant: str, plan_id: str) -> PlanView | None:
        raw = await self._redis.hget(self._plan_key(tenant, plan_id), "view")
        return None if raw is None else PlanView.model_validate_json(raw)

    async def compare_and_set(self, view: PlanView, expected_position: int) -> bool:
        keys = [self._plan_key(view.tenant, view.plan_id), self._subject_key(view.tenant, view.subject)]
        args = [
            str(expected_position),
            str(view.last_position),
            view.model_dump_json(),
            view.plan_id,
            str(self._tenant_ttl_ms.get(view.tenant, self._ttl_ms)),
        ]
        return bool(await self._cas(keys=keys, args=args))

    async def purge_subject(self, tenant: str, subject: str) -> int:
        keys = [self._subject_key(tenant, subject)]
        return int(await self._purge(keys=keys, args=[self._plan_key(tenant, "")]))

    async def plans_of(self, tenant: str, subject: str) -> list[str]:
        members = await self._redis.smembers(self._subject_key(tenant, subject))
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def clear(self) -> None:
        for pattern in ("tenant:*:plan:*", "tenant:*:subject:*:plans"):
            async for key in self._redis.scan_iter(match=f"{self._prefix}{pattern}", count=500):
                await self._redis.delete(key)

    async def close(self) -> None:
        await self._redis.aclose()
