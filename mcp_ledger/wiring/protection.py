"""Wiring of data protection and audit: the KEK ring, key store, sealer and audit reader.

Beside bootstrap (which calls it) because it picks concrete adapters too. The KEK comes from
LEDGER_KEK, else LEDGER_KEK_FILE, else a file in the data directory made on first start
(mode 0600); processes of one deployment must share it. Does not decide what is personal
(the domain) or seal anything itself (crypto/).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.kek import KekRing, ensure_kek_file, parse_keks
from mcp_ledger.crypto.records import RecordSealer, sealed_fields
from mcp_ledger.crypto.sealing import is_sealed
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.ports import AuditQuery, StoredEvent
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.producers.ports import Handler, Message
from mcp_ledger.settings import Settings

log = logging.getLogger(__name__)

SEALED_TEXT = "[sealed]"


def kek_path(settings: Settings) -> Path:
    """The KEK file the settings name (or the data directory's default one)."""
    return settings.kek_file or settings.data_dir / "kek"


def kek_ring(settings: Settings) -> KekRing:
    """The KEK ring the settings name; creates the default file when none is configured.

    Raises:
        KekError: the configured KEK is malformed or its file unreadable.
    """
    if settings.kek:
        return KekRing(parse_keks(settings.kek))
    path = kek_path(settings)
    if settings.kek_file is None and not path.exists():
        if not settings.embedded:
            log.warning("no LEDGER_KEK or LEDGER_KEK_FILE: generating %s; every process must share it", path)
        ensure_kek_file(path)
    return KekRing.from_file(path)


def open_key_store(settings: Settings) -> SqlKeyStore:
    """The SQL key store on the event store's database (the schema must be migrated).

    Raises:
        KekError: no usable KEK.
    """
    return SqlKeyStore(create_store_engine(settings.store_url), kek_ring(settings), owns_engine=True)


def open_sealer(settings: Settings) -> tuple[RecordSealer, CachingKeyStore]:
    """A sealer over a cached key store, and that cache (to evict erased subjects).

    Raises:
        KekError: no usable KEK.
    """
    keys = CachingKeyStore(open_key_store(settings), ttl=settings.key_cache_seconds)
    return RecordSealer(keys), keys


def evict_on_erasure(keys: CachingKeyStore) -> Handler:
    """A broadcast handler for ledger.events: forget a subject's cached keys as soon as an
    erasure of them starts anywhere, so this process stops opening their data."""

    async def on_event(message: Message) -> None:
        if message.headers.get("event_type") not in {"ErasureStarted", "SubjectKeysDestroyed"}:
            return
        metadata = json.loads(message.value).get("metadata", {})
        tenant, subject = metadata.get("tenant"), metadata.get("subject")
        if isinstance(tenant, str) and isinstance(subject, str):
            keys.evict(tenant, subject)

    return on_event


def audit_row(event: StoredEvent) -> dict[str, Any]:
    """An event as auditors see it: who, what, when; personal fields as "[sealed]", also those
    an event recorded before they were sealed holds in the clear."""
    data, hidden = event.data.items(), sealed_fields(event.event_type, event.data)
    return {
        "position": event.position,
        "recorded_at": event.recorded_at.isoformat(),
        "tenant": event.metadata.get("tenant"),
        "subject": event.metadata.get("subject"),
        "event_type": event.event_type,
        "tool_name": event.data.get("tool_name"),
        "correlation_id": event.metadata.get("correlation_id"),
        "command_id": event.metadata.get("command_id"),
        "stream_id": event.stream_id,
        "data": {name: SEALED_TEXT if is_sealed(value) or name in hidden else value for name, value in data},
    }


class SqlAuditReader:
    """The API's AuditReader on the event store's audit log."""

    def __init__(self, settings: Settings) -> None:
        self._log = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)

    async def search(self, tenant: str, filters: AuditFilters) -> list[dict[str, Any]]:
        query = AuditQuery(
            tenant=tenant,
            subject=filters.subject,
            tool_name=filters.tool_name,
            correlation_id=filters.correlation_id,
            since=filters.since,
            until=filters.until,
            limit=filters.limit,
        )
        return [audit_row(event) for event in await self._log.query(query)]

    async def verify(self, tenant: str) -> dict[str, Any]:
        report = await self._log.verify_chain(tenant)
        return {"checked": report.checked, "first_broken": report.first_broken, "reason": report.reason}

    async def close(self) -> None:
        await self._log.close()
