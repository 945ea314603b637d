"""Blobs in the event store's database (PostgreSQL in a distributed deployment, where every
API replica and worker must see the same blobs). The table is created by migration 0005;
migration 0006 adds `erased_at`, set when erasure turns a row into a tombstone."""

from __future__ import annotations

import time

from sqlalchemy import Column, Float, LargeBinary, MetaData, Table, Text, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from mcp_ledger.blobs.ports import Blob

metadata = MetaData()
blobs = Table(
    "blobs",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("blob_id", Text, primary_key=True),
    Column("subject", Text, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("mime_type", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("erased_at", Float, nullable=True),
)


class SqlBlobStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, blob: Blob) -> None:
        values = {
            "tenant": blob.tenant,
            "blob_id": blob.blob_id,
            "subject": blob.subject,
            "session_id": blob.session_id,
            "name": blob.name,
            "mime_type": blob.mime_type,
            "data": blob.data,
            "created_at": blob.created_at,
        }
        insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(blobs).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["tenant", "blob_id"],
            set_={
                "name": statement.excluded.name,
                "mime_type": statement.excluded.mime_type,
                "data": statement.excluded.data,
                "erased_at": None,
            },
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def get(self, tenant: str, blob_id: str) -> Blob | None:
        query = select(blobs).where(blobs.c.tenant == tenant, blobs.c.blob_id == blob_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        values = dict(row)
        erased = values.pop("erased_at") is not None
        return Blob(**values, erased=erased)

    async def purge_subject(self, tenant: str, subject: str) -> int:
        statement = (
            update(blobs)
            .where(blobs.c.tenant == tenant, blobs.c.subject == subject, blobs.c.erased_at.is_(None))
            .values(name="", mime_type="", data=b"", erased_at=time.time())
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount or 0)

    async def close(self) -> None:
        await self._engine.dispose()
