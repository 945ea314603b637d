"""Key lanes: records of different keys handled at once, records of one key in order.

A consumer that handles one record at a time lets a single slow record (a tool call waiting
for its agent's input, a slow upstream) hold back every other record behind it in its
partitions, though they belong to other sessions. Lanes keep the only order the bus promises
(per key) and drop the one it does not (across keys of a partition).

Owns the per-key chaining, the bound on records in hand, and waiting for them to finish. Does
not own retries or offsets: the adapters do (kafka.py commits a partition's offsets in order
behind its lanes; inprocess.py has none).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

_log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[None]]


class KeyLanes:
    """Runs work per key in submission order, up to `limit` pieces of work at once in all."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._slots = asyncio.Semaphore(limit)
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._running)

    async def submit(self, key: str, work: Work) -> asyncio.Task[None]:
        """Start `work` after the key's earlier work; wait first while `limit` are in hand.

        Work that raises is logged and ends its turn: retrying is the work's own business.
        """
        await self._slots.acquire()
        before = self._tails.get(key)
        task = asyncio.create_task(self._run(key, before, work))
        self._tails[key] = task
        self._running.add(task)
        return task

    async def _run(self, key: str, before: asyncio.Task[None] | None, work: Work) -> None:
        try:
            if before is not None:
                # Only the order matters here; the earlier work's own outcome is its own.
                await asyncio.gather(before, return_exceptions=True)
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("work for key %r failed", key)
        finally:
            self._slots.release()
            current = asyncio.current_task()
            if self._tails.get(key) is current:
                del self._tails[key]
            if current is not None:
                self._running.discard(current)

    async def drain(self, wait_s: float) -> bool:
        """Wait up to `wait_s` seconds for the work in hand; True if it all finished."""
        running = set(self._running)
        if not running:
            return True
        _, pending = await asyncio.wait(running, timeout=wait_s)
        return not pending

    async def cancel(self) -> None:
        """Cancel the work in hand and wait for it to unwind."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._running.clear()
        self._tails.clear()
