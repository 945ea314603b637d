"""Registry views in Redis: one hash per registry stream, compare-and-set by a Lua script.

Keys: {prefix}registry:tenant:{tenant} and {prefix}registry:tenant:{tenant}:session:{id}
(fields `ver` and `view`). They sit outside {prefix}tenant:* so that rebuilding the session
views never wipes the registries.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from mcp_ledger.projections.registry.view import RegistryView

_CAS = """
local current = redis.call('HGET', KEYS[1], 'ver') or '0'
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'ver', ARGV[2], 'view', ARGV[3])
return 1
"""


class RedisRegistryViewStore:
    """Registry views shared by every API replica and worker."""

    def __init__(self, client: Redis, *, prefix: str = "ledger:") -> None:
        self._redis = client
        self._prefix = prefix
        self._cas: Any = client.register_script(_CAS)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "ledger:") -> RedisRegistryViewStore:
        """A store on a redis:// URL (connects lazily)."""
        return cls(Redis.from_url(url), prefix=prefix)

    def _key(self, tenant: str, session_id: str | None) -> str:
        base = f"{self._prefix}registry:tenant:{tenant}"
        return base if session_id is None else f"{base}:session:{session_id}"

    async def get(self, tenant: str, session_id: str | None) -> RegistryView | None:
        raw = await self._redis.hget(self._key(tenant, session_id), "view")
        return None if raw is None else RegistryView.model_validate_json(raw)

    async def version(self, tenant: str, session_id: str | None) -> int:
        raw = await self._redis.hget(self._key(tenant, session_id), "ver")
        return 0 if raw is None else int(raw)

    async def compare_and_set(self, view: RegistryView, expected_version: int) -> bool:
        keys = [self._key(view.tenant, view.session_id)]
        args = [str(expected_version), str(view.version), view.model_dump_json()]
        return bool(await self._cas(keys=keys, args=args))

    async def clear(self) -> None:
        async for key in self._redis.scan_iter(match=f"{self._prefix}registry:tenant:*", count=500):
            await self._redis.delete(key)

    async def close(self) -> None:
        await self._redis.aclose()
