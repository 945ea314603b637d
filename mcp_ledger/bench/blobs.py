"""`mcp-ledger bench blobs`: what sealing blobs with the subject's data key costs, and how long
a retention scan takes.

Puts and gets documents of several sizes through the file blob store as it is (plaintext) and
through the sealing layer (AES-256-GCM under the subject's key from a SQLite key store with
the process's key cache), in a temporary directory; then times finding the due subjects among
many with the SQL activity query. Prints nothing itself; returns the report.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcp_ledger.blobs.files import FileBlobStore
from mcp_ledger.blobs.ports import Blob, BlobStore
from mcp_ledger.blobs.sealed import SealedBlobStore
from mcp_ledger.consumers.compliance.retention import RetentionPolicy, due_subjects
from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.activity_sql import SqlSubjectActivity
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine

SIZES = (1024, 64 * 1024, 1024 * 1024)


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


async def _timed(count: int, action: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await action(i)
        samples.append(time.perf_counter() - started)
    return samples


async def _round(store: BlobStore, size: int, count: int) -> dict[str, Any]:
    data = os.urandom(size)

    def blob(i: int) -> Blob:
        return Blob(
            f"b{size}-{i}",
            "bench",
            f"s{i % 10}",
            "session-1",
            "doc.bin",
            "application/octet-stream",
            data,
            0.0,
        )

    puts = await _timed(count, lambda i: store.put(blob(i)))
    gets = await _timed(count, lambda i: store.get("bench", f"b{size}-{i}"))
    return {"put": _ms(puts), "get": _ms(gets)}


async def run_blob_bench(scratch: Path, count: int, subjects: int) -> dict[str, Any]:
    """Sealed against plaintext put/get per size, and one retention scan over `subjects`."""
    url = f"sqlite+aiosqlite:///{scratch / 'bench.db'}"
    await upgrade_to_head_async(url)
    keys = CachingKeyStore(SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True))
    plain, sealed = FileBlobStore(scratch / "plain"), SealedBlobStore(FileBlobStore(scratch / "sealed"), keys)
    report: dict[str, Any] = {"count": count, "sizes": {}}
    try:
        for size in SIZES:
            report["sizes"][str(size)] = {
                "plain": await _round(plain, size, count),
                "sealed": await _round(sealed, size, count),
            }
        for i in range(subjects):
            await keys.active_key("bench", f"subject-{i}")
        activity = SqlSubjectActivity(create_store_engine(url), owns_engine=True)
        try:
            started = time.perf_counter()
            due = await due_subjects(
                activity, RetentionPolicy({"*": 0}), datetime.now(UTC) + timedelta(seconds=1)
            )
            report["retention_scan"] = {
                "subjects": subjects,
                "due": len(due),
                "ms": (time.perf_counter() - started) * 1000,
            }
        finally:
            await activity.close()
    finally:
        await keys.close()
    return report
