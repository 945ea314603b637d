"""Session views in Redis: one hash per session, a set per subject, CAS by a Lua script.

Keys: {prefix}tenant:{tenant}:session:{id} (fields `pos` and `view`) and
{prefix}tenant:{tenant}:subject:{subject}:sessions. The prefix lets a rebuild write beside
the live views for comparison. With a TTL, both keys expire that long after the session's
last change: plaintext personal data in Redis never outlives its retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from mcp_ledger.projections.session_view import SessionView

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
# Deletes the subject's index and every session it lists, atomically; returns views removed.
_PURGE = """
local removed = 0
for _, session_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  removed = removed + redis.call('DEL', ARGV[1] .. session_id)
end
redis.call('DEL', KEYS[1])
return removed
"""


class RedisSessionViewStore:
    """Session views shared by every API replica."""

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
    ) -> RedisSessionViewStore:
        """A store on a redis:// URL (connects lazily); `ttl` seconds (0: none) per view,
        `tenant_ttl` overrides it per tenant (retention)."""
        return cls(Redis.from_url(url), prefix=prefix, ttl=ttl, tenant_ttl=tenant_ttl)

    def _session_key(self, tenant: str, session_id: str) -> str:
        return f"{self._prefix}tenant:{tenant}:session:{session_id}"

    def _subject_key(self, tenant: str, subject: str) -> str:
        return f"{self._prefix}tenant:{tenant}:subject:{subject}:sessions"

    async def get(self, tenant: str, session_id: str) -> SessionView | None:
        raw = await self._redis.hget(self._session_key(tenant, session_id), "view")
        return None if raw is None else SessionView.model_validate_json(raw)

    async def compare_and_set(self, view: SessionView, expected_position: int) -> bool:
        keys = [self._session_key(view.tenant, view.session_id), self._subject_key(view.tenant, view.subject)]
        args = [
            str(expected_position),
            str(view.last_position),
            view.model_dump_json(),
            view.session_id,
            str(self._tenant_ttl_ms.get(view.tenant, self._ttl_ms)),
        ]
        return bool(await self._cas(keys=keys, args=args))

    async def purge_subject(self, tenant: str, subject: str) -> int:
        keys = [self._subject_key(tenant, subject)]
        return int(await self._purge(keys=keys, args=[self._session_key(tenant, "")]))

    async def sessions_of(self, tenant: str, subject: str) -> list[str]:
        members = await self._redis.smembers(self._subject_key(tenant, subject))
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def all_views(self, tenant: str | None = None) -> list[SessionView]:
        pattern = f"{self._prefix}tenant:{tenant or '*'}:session:*"
        views = []
        async for key in self._redis.scan_iter(match=pattern, count=500):
            raw = await self._redis.hget(key, "view")
            if raw is not None:
                views.append(SessionView.model_validate_json(raw))
        return sorted(views, key=lambda v: (v.tenant, v.session_id))

    async def clear(self) -> None:
        async for key in self._redis.scan_iter(match=f"{self._prefix}tenant:*", count=500):
            await self._redis.delete(key)

    async def close(self) -> None:
        await self._redis.aclose()
