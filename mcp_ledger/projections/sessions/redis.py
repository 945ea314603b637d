"""Session views in Redis (the shared mechanics are in redis_views.py).

Keys: {prefix}tenant:{tenant}:session:{id} and {prefix}tenant:{tenant}:subject:{subject}:sessions.
"""

from __future__ import annotations

from mcp_ledger.projections.redis_views import RedisViewStore
from mcp_ledger.projections.sessions.view import SessionView


class RedisSessionViewStore(RedisViewStore[SessionView]):
    """Session views shared by every API replica."""

    kind = "session"

    def _view_id(self, view: SessionView) -> str:
        return view.session_id

    def _parse(self, raw: bytes | str) -> SessionView:
        return SessionView.model_validate_json(raw)

    async def sessions_of(self, tenant: str, subject: str) -> list[str]:
        return await self._ids_of(tenant, subject)

    async def all_views(self, tenant: str | None = None) -> list[SessionView]:
        pattern = f"{self._prefix}tenant:{tenant or '*'}:session:*"
        views = []
        async for key in self._redis.scan_iter(match=pattern, count=500):
            raw = await self._redis.hget(key, "view")
            if raw is not None:
                views.append(SessionView.model_validate_json(raw))
        return sorted(views, key=lambda v: (v.tenant, v.session_id))

    async def clear(self) -> None:
        await self._delete_matching("tenant:*")
