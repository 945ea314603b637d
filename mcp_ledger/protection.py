"""Wiring of data protection: the KEK ring, the key store and the sealer, from settings.

Beside bootstrap (which calls it) because it picks concrete adapters too. The KEK comes from
LEDGER_KEK, else LEDGER_KEK_FILE, else a file in the data directory made on first start
(mode 0600); processes of one deployment must share it. Does not decide what is personal
(the domain) or seal anything itself (crypto/).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.kek import KekRing, ensure_kek_file, parse_keks
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.producers.ports import Handler, Message
from mcp_ledger.settings import Settings

log = logging.getLogger(__name__)


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
