"""SqlKeyStore: per-subject data keys in the subject_keys table (PostgreSQL or SQLite).

Owns wrapping (AES-GCM under the ring's current KEK, bound to the key's row), creating a
subject's key once under concurrency (insert-or-ignore on the one-active-key index), destroying
keys (the wrapped bytes are nulled, then the database files are scrubbed of the old row:
scrub.py) and rewrapping every key under a new KEK (rotation). A key created while another
process rotated is rewrapped at once under the KEK that became current. A key this process's
ring cannot unwrap is a KekMismatchError that says so. Uses the event store's database but
never its tables: events are not touched here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_ledger.crypto.cipher import DecryptionError, decrypt, encrypt, new_key, wrap_associated
from mcp_ledger.crypto.kek import Kek, KekError, KekRing
from mcp_ledger.crypto.ports import DataKey, KekMismatchError, KeyDestroyedError, KeyStoreError
from mcp_ledger.crypto.scrub import scrub_destroyed_keys
from mcp_ledger.eventstore.tables import subject_keys

_REWRAP_BATCH = 500
# Only a row still wrapped by the KEK it was read under: a destroy or another rewrap may
# have come first.
_REWRAP = (
    update(subject_keys)
    .where(
        subject_keys.c.key_id == bindparam("row_key_id"),
        subject_keys.c.kek_id == bindparam("row_kek_id"),
        subject_keys.c.wrapped_key.is_not(None),
    )
    .values(kek_id=bindparam("kek_id"), wrapped_key=bindparam("wrapped_key"))
)


class SqlKeyStore:
    """The KeyStore port on a SQLAlchemy AsyncEngine."""

    def __init__(self, engine: AsyncEngine, ring: KekRing, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._ring = ring
        self._owns_engine = owns_engine
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def ring(self) -> KekRing:
        return self._ring

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
            await self._secure_delete(conn)
            inserted = (await conn.execute(self._insert_ignoring_conflicts(), row)).rowcount
        if inserted:
            await self._follow_rotation(row, raw, kek)
        # Whoever won the race, the active row is now the one to use.
        found = await self._active(tenant, subject)
        if found is None:
            raise KeyStoreError(f"no active key for a subject of tenant {tenant} after creating one")
        return found

    async def current_key(self, tenant: str, subject: str) -> DataKey | None:
        return await self._active(tenant, subject)

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
            await self._secure_delete(conn)
            result = await conn.execute(statement)
        destroyed = int(result.rowcount or 0)
        if destroyed:
            await scrub_destroyed_keys(self._engine)
        return destroyed

    async def scrub(self) -> None:
        """Clear the database files of old row versions of the key table (after a rotation)."""
        await scrub_destroyed_keys(self._engine)

    async def rewrap(self, ring: KekRing | None = None) -> int:
        """Rewrap every live key wrapped by an older KEK of `ring` (default: this store's) under
        its current one; returns how many were rewrapped. Repeats until none is left, so keys
        created under an old KEK meanwhile are covered. Keys wrapped by a KEK the ring does not
        hold are left alone (`unreadable_keks` names them)."""
        ring = ring or self._ring
        current, total = ring.current, 0
        older = [kek.kek_id for kek in ring.keks if kek.kek_id != current.kek_id]
        stale = select(subject_keys).where(
            subject_keys.c.wrapped_key.is_not(None), subject_keys.c.kek_id.in_(older)
        )
        while True:
            async with self._engine.begin() as conn:
                await self._secure_delete(conn)
                rows = (await conn.execute(stale.limit(_REWRAP_BATCH))).all()
                if rows:  # one statement for the batch: a round trip per key made this minutes long
                    await conn.execute(_REWRAP, [self._rewrapped(row._mapping, ring) for row in rows])
            if not rows:
                return total
            total += len(rows)

    def _rewrapped(self, values: Any, ring: KekRing) -> dict[str, Any]:
        current, raw = ring.current, self._unwrap(values, ring).key
        bound = wrap_associated(current.kek_id, values["tenant"], values["subject"], values["key_id"])
        return {
            "row_key_id": values["key_id"],
            "row_kek_id": values["kek_id"],
            "kek_id": current.kek_id,
            "wrapped_key": encrypt(current.key, raw, bound),
        }

    async def kek_ids_in_use(self) -> dict[str, int]:
        """How many live keys each KEK wraps (for operators checking a rotation)."""
        query = (
            select(subject_keys.c.kek_id, func.count())
            .where(subject_keys.c.wrapped_key.is_not(None))
            .group_by(subject_keys.c.kek_id)
        )
        async with self._engine.connect() as conn:
            return {str(kek_id): int(n) for kek_id, n in (await conn.execute(query)).all()}

    async def unreadable_keks(self) -> dict[str, int]:
        """KEK ids that wrap live keys but are not in this process's ring, with how many keys
        each wraps: non-empty means this process cannot serve those subjects."""
        self._ring.current  # noqa: B018 -- re-reads the KEK file if another process rotated it
        known = {kek.kek_id for kek in self._ring.keks}
        return {kek_id: n for kek_id, n in (await self.kek_ids_in_use()).items() if kek_id not in known}

    def mismatch(self, what: str, kek_ids: str) -> KekMismatchError:
        """The error naming a KEK mismatch, for the caller, the log and /readyz alike."""
        ours = ", ".join(kek.kek_id for kek in self._ring.keks)
        return KekMismatchError(
            f"this process's KEK cannot unwrap {what}: wrapped by KEK {kek_ids}, this process holds "
            f"KEK {ours}; LEDGER_KEK (or LEDGER_KEK_FILE) differs between processes?"
        )

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()

    async def _follow_rotation(self, row: dict[str, Any], raw: bytes, used: Kek) -> None:
        """A rotation may have begun (or ended, retiring `used`) while the new key was wrapped:
        wrap it again under the KEK that is current now, which this process still holds."""
        current = self._ring.current
        if current.kek_id == used.kek_id:
            return
        bound = wrap_associated(current.kek_id, row["tenant"], row["subject"], row["key_id"])
        async with self._engine.begin() as conn:
            await self._secure_delete(conn)
            await conn.execute(
                update(subject_keys)
                .where(subject_keys.c.key_id == row["key_id"], subject_keys.c.kek_id == used.kek_id)
                .values(kek_id=current.kek_id, wrapped_key=encrypt(current.key, raw, bound))
            )

    async def _secure_delete(self, conn: Any) -> None:
        if not self._postgres:
            # SQLite then zeroes replaced and freed bytes instead of leaving them in free space.
            await conn.exec_driver_sql("PRAGMA secure_delete=ON")

    async def _active(self, tenant: str, subject: str) -> DataKey | None:
        query = select(subject_keys).where(
            subject_keys.c.tenant == tenant,
            subject_keys.c.subject == subject,
            subject_keys.c.destroyed_at.is_(None),
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else self._unwrap(row._mapping)

    def _unwrap(self, values: Any, ring: KekRing | None = None) -> DataKey:
        try:
            kek = (ring or self._ring).find(values["kek_id"])
        except KekError as error:
            raise self.mismatch(f"the data key of tenant {values['tenant']}", values["kek_id"]) from error
        bound = wrap_associated(kek.kek_id, values["tenant"], values["subject"], values["key_id"])
        try:
            return DataKey(values["key_id"], decrypt(kek.key, values["wrapped_key"], bound))
        except DecryptionError as error:
            raise KeyStoreError(f"data key {values['key_id']} does not unwrap: altered or moved") from error

    def _insert_ignoring_conflicts(self) -> Insert:
        if self._postgres:
            return postgresql.insert(subject_keys).on_conflict_do_nothing()
        return sqlite.insert(subject_keys).on_conflict_do_nothing()
