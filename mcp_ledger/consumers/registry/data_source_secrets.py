"""Opening a connected data source's DSN at call time, from the sealed event store.

A DSN may hold credentials, so it is sealed with the connecting subject's data key in the
DataSourceConnected event and never kept in a read model. The SQL runner asks here for it
per call: the session's registry stream is read and its latest connection of that source
opened. Once the subject is erased the DSN opens as a placeholder and the source is
unavailable. Does not connect to anything (sql_runner.py does).
"""

from __future__ import annotations

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.sealing import erased_value
from mcp_ledger.domain.registry.events import DataSourceConnected
from mcp_ledger.domain.streams import registry_stream
from mcp_ledger.eventstore.ports import EventStore


class DataSourceSecrets:
    """DSNs of connected data sources, opened from their registry streams."""

    def __init__(self, store: EventStore, mapper: EventMapper) -> None:
        self._store = store
        self._mapper = mapper

    async def dsn(self, tenant: str, session_id: str | None, source: str) -> str | None:
        """The DSN of `source` in that registry, None when not connected or erased.

        Raises:
            DecryptionError: the stored DSN was altered.
        """
        events = await self._store.read_stream(registry_stream(tenant, session_id))
        for stored in reversed(events):
            if stored.event_type != DataSourceConnected.__name__ or stored.data.get("source") != source:
                continue
            value = (await self._mapper.open(stored)).data.get("dsn")
            if not isinstance(value, str) or value == erased_value(DataSourceConnected, "dsn"):
                return None
            return value
        return None
