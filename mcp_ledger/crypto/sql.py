"""SqlKeyStore: per-subject data keys in the subject_keys table (PostgreSQL or SQLite).

Owns wrapping (AES-GCM under the ring's current KEK, bound to the key's row), creating a
subject's key once under concurrency (insert-or-ignore on the one-active-key index), destroying
keys (the wrapped bytes are nulled) and rewrapping every key under a new KEK (rotation).
Uses the event store's database but never its tables: events are not touched here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_ledger.crypto.cipher import DecryptionError, decrypt, encrypt, new_key, wrap_associated
from mcp_ledger.crypto.kek import KekRing
from mcp_ledger.crypto.ports import DataKey, KeyDestroyedError, KeyStoreError
from mcp_ledger.eventstore.tables import subject_keys

_REWRAP_BATCH = 500


class SqlKeyStore:
    """The KeyStore port on a SQLAlchemy AsyncEngine."""

    def __init__(self, engine: AsyncEngine, ring: KekRing, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._ring = ring
        self._owns_engine = owns_engine
        self._postgres = engine.dialect.name == "postgresql"

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        found = await self._active(tenant, subject)
        if found is not None:
            return found
        key_id, raw = uuid.uuid4().hex, new_key()
        kek = self._ring.current
        row = {
            "key_id": key_id,
            "tenant": tenant,
            "subject": subject,
            "kek_id": kek.kek_id,
            "wrapped_key": encrypt(kek.key, raw, wrap_associated(kek.kek_id, tenant, subject, key_id)),
            "created_at": datetime.now(UTC),
        }
        async with self._engine.begin() as conn:
            await conn.execute(self._insert_ignoring_conflicts(), row)
        # Whoever won the race, the active row is now the one to use.
        found = await self._active(tenant, subject)
        if found is None:
            raise KeyStoreError(f"no active key for a subject of tenant {tenant} after creating one")
        return found

    async def key(self, tenant: str, subject: str, key_id: str) -> DataKey:
        query = select(subject_keys).where(
            subject_keys.c.key_id == key_id,
            subject_keys.c.tenant == tenant,
            subject_keys.c.subject == subject,
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row._mapping["wrapped_key"] is None:
            raise KeyDestroyedError(f"data key {key_id} is destroyed or unknown")
        return self._unwrap(row._mapping)

    async def destroy(self, tenant: str, subject: str) -> int:
        statement = (
            update(subject_keys)
            .where(
                subject_keys.c.tenant == tenant,
                subject_keys.c.subject == subject,
                subject_keys.c.destroyed_at.is_(None),
            )
            .values(wrapped_key=None, kek_id=None, destroyed_at=datetime.now(UTC))
        )
        async with self._engine.begin() as conn:
            if not self._postgres:
                # SQLite then zeroes the freed wrapped bytes instead of leaving them in free pages.
                await conn.exec_driver_sql("PRAGMA secure_delete=ON")
            result = await conn.execute(statement)
        return int(result.rowcount or 0)

    async def rewrap(self) -> int:
        """Rewrap every live key not under the current KEK; returns how many were rewrapped.
        Repeats until none is left, so keys created under the old KEK meanwhile are covered.

        Raises:
            KekError: a key is wrapped by a KEK the ring does not hold.
        """
        current, total = self._ring.current, 0
        stale = select(subject_keys).where(
            subject_keys.c.wrapped_key.is_not(None), subject_keys.c.kek_id != current.kek_id
        )
        while True:
            async with self._engine.begin() as conn:
                rows = (await conn.execute(stale.limit(_REWRAP_BATCH))).all()
                for row in rows:
                    values = row._mapping
                    raw = self._unwrap(values).key
                    bound = wrap_associated(
                        current.kek_id, values["tenant"], values["subject"], values["key_id"]
                    )
                    await conn.execute(
                        update(subject_keys)
                        .where(
                            subject_keys.c.key_id == values["key_id"],
                            subject_keys.c.wrapped_key.is_not(None),
                        )
                        .values(kek_id=current.kek_id, wrapped_key=encrypt(current.key, raw, bound))
                    )
            if not rows:
                return total
            total += len(rows)

    async def kek_ids_in_use(self) -> dict[str, int]:
        """How many live keys each KEK wraps (for operators checking a rotation)."""
        query = select(subject_keys.c.kek_id).where(subject_keys.c.wrapped_key.is_not(None))
        counts: dict[str, int] = {}
        async with self._engine.connect() as conn:
            for (kek_id,) in (await conn.execute(query)).all():
                counts[kek_id] = counts.get(kek_id, 0) + 1
        return counts

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def _active(self, tenant: str, subject: str) -> DataKey | None:
        query = select(subject_keys).where(
            subject_keys.c.tenant == tenant,
            subject_keys.c.subject == subject,
            subject_keys.c.destroyed_at.is_(None),
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else self._unwrap(row._mapping)

    def _unwrap(self, values: Any) -> DataKey:
        kek = self._ring.find(values["kek_id"])
        bound = wrap_associated(kek.kek_id, values["tenant"], values["subject"], values["key_id"])
        try:
            return DataKey(values["key_id"], decrypt(kek.key, values["wrapped_key"], bound))
        except DecryptionError as error:
            raise KeyStoreError(f"data key {values['key_id']} does not unwrap: altered or moved") from error

    def _insert_ignoring_conflicts(self) -> Insert:
        if self._postgres:
            return postgresql.insert(subject_keys).on_conflict_do_nothing()
        return sqlite.insert(subject_keys).on_conflict_do_nothing()
