"""Opening an upstream's static secret at call time, from the sealed event store.

The secret (a bearer token or header value) is sealed with the registering subject's key
in UpstreamServerRegistered and never kept in a view; the worker reads the registry stream
and opens the latest registration of that server. Erased: None (calls fail clearly).
"""

from __future__ import annotations

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.sealing import erased_value
from mcp_ledger.domain.streams import registry_stream
from mcp_ledger.domain.upstreams.events import UpstreamServerRegistered
from mcp_ledger.eventstore.ports import EventStore


class UpstreamSecrets:
    def __init__(self, store: EventStore, mapper: EventMapper) -> None:
        self._store = store
        self._mapper = mapper

    async def secret(self, tenant: str, session_id: str | None, server: str) -> str | None:
        """The server's secret in that registry, None when none, erased or not registered.

        Raises:
            DecryptionError: the stored secret was altered.
        """
        events = await self._store.read_stream(registry_stream(tenant, session_id))
        for stored in reversed(events):
            if stored.event_type != UpstreamServerRegistered.__name__:
                continue
            if stored.data.get("server", {}).get("name") != server:
                continue
            value = (await self._mapper.open(stored)).data.get("secret")
            if not isinstance(value, str) or value == erased_value(UpstreamServerRegistered, "secret"):
                return None
            return value
        return None
