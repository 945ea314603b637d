"""The erasure handler: crypto-shred a subject, purge their data, record it without PII.

Owns the steps of an erasure and their order: record ErasureStarted, destroy the subject's
data keys (from then on every sealed field of theirs, in the store, the outbox, Kafka and
backups, is unreadable; the key store scrubs the old row from the database files), record
SubjectKeysDestroyed, cross the barrier (every live process dropped the subject from its
caches and finished the projections of them in flight), call every registered purger
(session views, API sessions, pointers, blobs…), retire the KEK that wrapped the destroyed key
(so copies of it in backups and WAL archives no longer unwrap), then record the terminal
ErasureCompleted. Each step is idempotent and the stream says which are done, so a
redelivered command after a crash resumes where it stopped; a finished erasure is not redone.
Does not know what a purger removes or how (they do), nor how the command arrived (bus, CLI
or admin endpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from mcp_ledger.consumers.compliance.barrier import ErasureBarrier
from mcp_ledger.consumers.mapping import command_key, to_domain, to_new_events
from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.domain.compliance.erasure import (
    ComplianceEnvelope,
    EraseSubject,
    ErasureCompleted,
    ErasureStarted,
    SubjectKeysDestroyed,
)
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.eventstore.ports import ConcurrencyError, EventStore, StoredEvent

log = logging.getLogger(__name__)

AppendedCallback = Callable[[Sequence[StoredEvent]], Awaitable[None]]


class SubjectDataPurger(Protocol):
    """Removes one kind of a subject's data outside the event store; must be idempotent."""

    @property
    def name(self) -> str:
        """What it purges, as reported in ErasureCompleted.purged (e.g. "session_views")."""
        ...

    async def purge(self, tenant: str, subject: str) -> int:
        """Remove the subject's data; returns how many items were removed (0 when none left)."""
        ...


class KekRetirement(Protocol):
    """Retires the KEKs that wrapped destroyed keys (crypto/rotation.py)."""

    async def retire_old_keks(self) -> int:
        """Rotate to a new KEK and drop the older ones; returns how many were retired."""
        ...


class ErasureConflictError(Exception):
    """The erasure's stream kept moving (two workers on one erasure); it will be redelivered."""


class ErasureHandler:
    """Handles EraseSubject commands from ledger.compliance (or called directly)."""

    def __init__(
        self,
        store: EventStore,
        keys: KeyStore,
        purgers: Sequence[SubjectDataPurger],
        on_appended: AppendedCallback,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
        barrier: ErasureBarrier | None = None,
        keks: KekRetirement | None = None,
    ) -> None:
        self._barrier = barrier
        self._keks = keks
        self._store = store
        self._keys = keys
        self._purgers = list(purgers)
        self._on_appended = on_appended
        self._clock = clock
        self._max_attempts = max_attempts

    def add_purger(self, purger: SubjectDataPurger) -> None:
        """Register another kind of subject data to purge (before commands arrive)."""
        self._purgers.append(purger)

    async def handle_payload(self, payload: bytes) -> None:
        """Handle one message from the compliance topic; a malformed one is logged and dropped."""
        try:
            command = ComplianceEnvelope.model_validate_json(payload).command
        except ValueError:
            log.error("dropping malformed compliance message (%d bytes)", len(payload))
            return
        await self.handle(command)

    async def handle(self, command: EraseSubject) -> ErasureCompleted:
        """Run (or resume, or recall) an erasure; returns its completion record.

        Raises:
            ErasureConflictError: another handler kept appending to the same erasure.
        """
        for _ in range(self._max_attempts):
            try:
                return await self._attempt(command)
            except ConcurrencyError:
                continue
        raise ErasureConflictError(f"erasure {command.command_id} kept changing under this worker")

    async def _attempt(self, command: EraseSubject) -> ErasureCompleted:
        history = [to_domain(stored) for stored in await self._store.read_stream(command.stream_id)]
        for event in history:
            if isinstance(event, ErasureCompleted):
                return event
        version = len(history)
        started = next((e for e in history if isinstance(e, ErasureStarted)), None)
        if started is None:
            started = ErasureStarted(
                erasure_id=command.command_id, requested_by=command.requested_by, started_at=self._clock()
            )
            version = await self._record(command, version, [started])
            log.info("erasure %s started", command.command_id)
        shredded = next((e for e in history if isinstance(e, SubjectKeysDestroyed)), None)
        if shredded is None:
            destroyed = await self._keys.destroy(command.tenant, command.subject)
            shredded = SubjectKeysDestroyed(erasure_id=command.command_id, keys_destroyed=destroyed)
            version = await self._record(command, version, [shredded])
        purged = await self._purge(command)
        completed = ErasureCompleted(
            erasure_id=command.command_id,
            requested_by=command.requested_by,
            keys_destroyed=shredded.keys_destroyed,
            purged=purged,
            started_at=started.started_at,
            completed_at=self._clock(),
        )
        await self._record(command, version, [completed], final=True)
        log.info("erasure %s completed: %s", command.command_id, purged)
        return completed

    async def _purge(self, command: EraseSubject) -> dict[str, int]:
        # Caches first: a view written from data opened before the shred must land before the
        # views are purged, and no process may answer from its caches once this completes.
        purged: dict[str, int] = {}
        if self._barrier is not None:
            purged["replica_caches"] = await self._barrier.cross(
                command.tenant, command.subject, command.command_id
            )
        for purger in self._purgers:
            purged[purger.name] = await purger.purge(command.tenant, command.subject)
        if self._keks is not None:
            purged["retired_keks"] = await self._keks.retire_old_keks()
        return purged

    async def _record(
        self, command: EraseSubject, version: int, events: list[DomainEvent], *, final: bool = False
    ) -> int:
        # Only the final append carries the command key: the commands table then says "done".
        key = command_key(command) if final else None
        result = await self._store.append(
            command.stream_id, version, to_new_events(command, events), command=key
        )
        if not result.duplicate:
            await self._on_appended(result.events)
        return version + len(events)
