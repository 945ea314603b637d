"""Wiring of data protection and audit: the KEK ring, key store, sealer, KEK rotation, the
key readiness probe, units of work for API requests, and the audit reader.

Beside bootstrap (which calls it) because it picks concrete adapters too. The KEK comes from
LEDGER_KEK, else LEDGER_KEK_FILE, else a file in the data directory made on first start
(mode 0600); processes of one deployment must share it, and a process whose ring cannot
unwrap the stored keys says so at start, in every call it cannot serve and in /readyz.
Does not decide what is personal (the domain) or seal anything itself (crypto/).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.kek import KekRing, ensure_kek_file, parse_keks
from mcp_ledger.crypto.ports import KekMismatchError
from mcp_ledger.crypto.records import RecordSealer, sealed_fields
from mcp_ledger.crypto.rotation import KekRotation
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


def sql_keys(keys: CachingKeyStore) -> SqlKeyStore:
    """The SQL key store behind the process's key cache."""
    inner = keys.inner
    assert isinstance(inner, SqlKeyStore)
    return inner


def kek_rotation(settings: Settings, keys: SqlKeyStore) -> KekRotation:
    """What retires KEKs after an erasure: the KEK file when the deployment owns one (the data
    directory's or LEDGER_KEK_FILE), nothing but a warning when LEDGER_KEK gives it."""
    return KekRotation(None if settings.kek else kek_path(settings), keys)


async def kek_mismatch(keys: SqlKeyStore) -> KekMismatchError | None:
    """Why this process cannot unwrap some stored keys (logged), None if it can."""
    foreign = await keys.unreadable_keks()
    if not foreign:
        return None
    error = keys.mismatch(f"{sum(foreign.values())} stored data keys", ", ".join(sorted(foreign)))
    log.error("%s", error)
    return error


class KekProbe:
    """The /readyz part "keys": fails while live keys are wrapped by a KEK this process does
    not hold. A good answer is kept for `every` seconds (the check reads the key table)."""

    def __init__(self, keys: SqlKeyStore, *, every: float = 30.0) -> None:
        self._keys = keys
        self._every = every
        self._good_until = float("-inf")

    async def __call__(self) -> None:
        if time.monotonic() < self._good_until:
            return
        problem = await kek_mismatch(self._keys)
        if problem is not None:
            raise problem
        self._good_until = time.monotonic() + self._every


class KeyUnits:
    """ASGI middleware: each HTTP request is one unit of work of the key scopes, so what an
    API request opened (a pipeline stage's output) is sealed into its next commands only
    under the key it met first, never under a key created after an erasure."""

    def __init__(self, app: ASGIApp, keys: CachingKeyStore) -> None:
        self._app = app
        self._keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._keys.unit():
            await self._app(scope, receive, send)


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


def _trace_id(traceparent: object) -> str | None:
    """The trace id of a W3C traceparent (version-traceid-spanid-flags), None without one."""
    parts = traceparent.split("-") if isinstance(traceparent, str) else []
    return parts[1] if len(parts) == 4 else None


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
        "trace_id": _trace_id(event.metadata.get("traceparent")),
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
            event_types=filters.event_types,
            after_position=filters.after_position,
            limit=filters.limit,
        )
        return [audit_row(event) for event in await self._log.query(query)]

    async def verify(self, tenant: str) -> dict[str, Any]:
        report = await self._log.verify_chain(tenant)
        return {"checked": report.checked, "first_broken": report.first_broken, "reason": report.reason}

    async def close(self) -> None:
        await self._log.close()
