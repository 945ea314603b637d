"""Read models in Redis, the part session views and plan views share: one hash per view, a
set per subject naming that subject's views, compare-and-set by a Lua script.

Keys: {prefix}tenant:{tenant}:{kind}:{id} (fields `pos` and `view`) and
{prefix}tenant:{tenant}:subject:{subject}:{kind}s. The prefix lets a rebuild write beside the
live views for comparison. With a TTL (global, or the tenant's), both keys expire that long
after the view's last change: plaintext personal data in Redis never outlives its retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from redis.asyncio import Redis

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
# Deletes the subject's index and every view it lists, atomically; returns views removed.
_PURGE = """
local removed = 0
for _, view_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  removed = removed + redis.call('DEL', ARGV[1] .. view_id)
end
redis.call('DEL', KEYS[1])
return removed
"""


class ProjectedView(Protocol):
    @property
    def tenant(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def last_position(self) -> int: ...

    def model_dump_json(self) -> str: ...


V = TypeVar("V", bound=ProjectedView)


class RedisViewStore(Generic[V]):
    """Views of one kind ("session", "plan"); subclasses say how to name and parse them."""

    kind: ClassVar[str]

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
    ) -> Self:
        """A store on a redis:// URL (connects lazily); `ttl` seconds (0: none) per view,
        `tenant_ttl` overrides it per tenant (retention)."""
        return cls(Redis.from_url(url), prefix=prefix, ttl=ttl, tenant_ttl=tenant_ttl)

    def _view_id(self, view: V) -> str:
        raise NotImplementedError

    def _parse(self, raw: bytes | str) -> V:
        raise NotImplementedError

    def _view_key(self, tenant: str, view_id: str) -> str:
        return f"{self._prefix}tenant:{tenant}:{self.kind}:{view_id}"

    def _subject_key(self, tenant: str, subject: str) -> str:
        return f"{self._prefix}tenant:{tenant}:subject:{subject}:{self.kind}s"

    async def get(self, tenant: str, view_id: str) -> V | None:
        raw = await self._redis.hget(self._view_key(tenant, view_id), "view")
        return None if raw is None else self._parse(raw)

    async def compare_and_set(self, view: V, expected_position: int) -> bool:
        view_id = self._view_id(view)
        keys = [self._view_key(view.tenant, view_id), self._subject_key(view.tenant, view.subject)]
        args = [
            str(expected_position),
            str(view.last_position),
            view.model_dump_json(),
            view_id,
            str(self._tenant_ttl_ms.get(view.tenant, self._ttl_ms)),
        ]
        return bool(await self._cas(keys=keys, args=args))

    async def purge_subject(self, tenant: str, subject: str) -> int:
        keys = [self._subject_key(tenant, subject)]
        return int(await self._purge(keys=keys, args=[self._view_key(tenant, "")]))

    async def _ids_of(self, tenant: str, subject: str) -> list[str]:
        members = await self._redis.smembers(self._subject_key(tenant, subject))
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def _delete_matching(self, *patterns: str) -> None:
        for pattern in patterns:
            async for key in self._redis.scan_iter(match=f"{self._prefix}{pattern}", count=500):
                await self._redis.delete(key)

    async def close(self) -> None:
        await self._redis.aclose()
