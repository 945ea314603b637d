"""Wiring of the compliance parts (part of bootstrap): the sealed blob store, the purgers
every erasure runs and the erasure barrier this process takes part in, for workers, API
replicas and the CLI's embedded erasure alike.

Only wiring/bootstrap.py and the CLI call this module; it picks concrete adapters from settings.
Does not run erasures (consumers/erasure.py does) or decide what is personal (the domain).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from mcp_ledger.blobs.files import FileBlobStore
from mcp_ledger.blobs.ports import BlobStore
from mcp_ledger.blobs.purge import BlobPurger
from mcp_ledger.blobs.sealed import SealedBlobStore
from mcp_ledger.blobs.sql import SqlBlobStore
from mcp_ledger.consumers.compliance.barrier import ErasureBarrier, LocalBarrier, SubjectCaches
from mcp_ledger.consumers.compliance.barrier_redis import RedisBarrier
from mcp_ledger.consumers.compliance.erasure import SubjectDataPurger
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.mcp_api.transport.sessions import TransportSessionPurger
from mcp_ledger.mcp_api.transport.sessions_redis import RedisTransportSessions
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.purge import PlanViewPurger, SessionViewPurger
from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.settings import Settings

log = logging.getLogger(__name__)


class BlobSettingsError(ValueError):
    """LEDGER_BLOBS names no supported blob store."""


def open_blob_store(settings: Settings, keys: KeyStore, stack: AsyncExitStack) -> BlobStore:
    """The blob store the settings name, sealing with the subjects' data keys; closed by `stack`.

    Raises:
        BlobSettingsError: LEDGER_BLOBS is neither empty nor 'store'.
    """
    store: BlobStore
    if settings.blobs == "store" or (settings.blobs == "" and not settings.store_url.startswith("sqlite")):
        store = SqlBlobStore(create_store_engine(settings.store_url))
    elif settings.blobs == "":
        store = FileBlobStore(settings.data_dir / "blobs")
    else:
        raise BlobSettingsError(
            f"LEDGER_BLOBS must be empty (files in the data directory, or the PostgreSQL store when "
            f"LEDGER_STORE is PostgreSQL) or 'store'; S3 is not supported yet, not {settings.blobs!r}"
        )
    sealed = SealedBlobStore(store, keys)
    stack.push_async_callback(sealed.close)
    return sealed


def erasure_purgers(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    views: SessionViewStore,
    plan_views: PlanViewStore,
    blobs: BlobStore,
) -> list[SubjectDataPurger]:
    """Everything of a subject an erasure removes besides their keys: session and plan views,
    blobs and, when sessions are shared in Redis, their MCP transport sessions (an embedded
    API registers its in-memory sessions itself)."""
    purgers: list[SubjectDataPurger] = [
        SessionViewPurger(views),
        PlanViewPurger(plan_views),
        BlobPurger(blobs),
    ]
    if not settings.state.startswith("memory"):
        sessions = RedisTransportSessions.from_url(settings.state, settings.state_prefix)
        stack.push_async_callback(sessions.close)
        purgers.append(TransportSessionPurger(sessions))
    return purgers


async def erasure_barrier(settings: Settings, caches: SubjectCaches, stack: AsyncExitStack) -> ErasureBarrier:
    """This process's part in the erasure barrier, started (and stopped by `stack`): through
    Redis when processes share LEDGER_STATE, else this process alone."""
    if settings.state.startswith("memory"):
        if not settings.embedded:
            log.warning("LEDGER_STATE is memory://: an erasure reaches only this process's caches")
        return LocalBarrier(caches)
    barrier = RedisBarrier.from_url(settings.state, settings.state_prefix, caches)
    stack.push_async_callback(barrier.close)
    await barrier.start()
    return barrier


def projecting(
    caches: SubjectCaches, handle: Callable[[bytes], Awaitable[None]]
) -> Callable[[bytes], Awaitable[None]]:
    """A projection of ledger.events that the erasure barrier waits for: while it opens an
    event of a subject and writes the view, an erasure of that subject does not purge views."""

    async def project(payload: bytes) -> None:
        try:
            metadata = json.loads(payload).get("metadata") or {}
        except (ValueError, AttributeError):
            metadata = {}
        tenant, subject = str(metadata.get("tenant", "")), str(metadata.get("subject", ""))
        async with caches.writing(tenant, subject):
            await handle(payload)

    return project
