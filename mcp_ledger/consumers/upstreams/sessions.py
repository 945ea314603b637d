"""Upstream sessions held by a worker: one MCP session per ledger session and server.

A 2025-11-25 upstream keeps state per MCP session, so each ledger session gets its own
(calls without a ledger session get one per subject: never shared across subjects). The
pool re-establishes a session transparently when the upstream answers 404 for it (expired,
or the upstream restarted: "Session terminated" or "Session not found") and after a broken
connection, closes idle ones after `idle_s` and all of them on `close()`, and bounds how
many it holds (the least recently used goes first). An erasure closes the erased subject's
sessions (the pool is one of the erasure barrier's subject caches). A key's lock lives as long as its
session or a caller waiting for it, so the pool does not grow with every session it saw. A
worker that crashed holds nothing: the next worker opens a new session on the next call.
2026-07-28 upstreams are stateless, one connection per scope serves every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

from mcp_ledger.consumers.upstreams.connection import Connector, UpstreamConnection, UpstreamTarget
from mcp_ledger.consumers.upstreams.relay.routing import CallSinks, InputSink, LogSink

log = logging.getLogger(__name__)

T = TypeVar("T")
SessionKey = tuple[str, ...]
"""(tenant, subject, its ledger session or none, registry scope, server name, entry digest,
the client capabilities offered)."""


def session_expired(error: BaseException) -> bool:
    """The upstream no longer knows the session (HTTP 404 for its Mcp-Session-Id)."""
    if not isinstance(error, MCPError):
        return False
    message = str(error.error.message).lower()
    return "session terminated" in message or "session not found" in message


@dataclass
class _KeyLock:
    """One key's lock and how many callers are in or waiting on it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class UpstreamSessions:
    """Held upstream connections by session key."""

    def __init__(self, connect: Connector, *, idle_s: float = 300.0, max_sessions: int = 500) -> None:
        self._connect = connect
        self._idle_s = idle_s
        self._max = max_sessions
        self._held: dict[SessionKey, UpstreamConnection] = {}
        self._locks: dict[SessionKey, _KeyLock] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._caching = True

    def __len__(self) -> int:
        return len(self._held)

    async def _get(self, key: SessionKey, target: UpstreamTarget) -> UpstreamConnection:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                held = self._held.get(key)
                if held is not None and held.alive:
                    return held
                if held is not None:
                    await self._drop(key)
                await self._evict()
                held = await self._connect(target)
                self._held[key] = held
                self._start_sweeper()
                return held
        finally:
            entry.users -= 1
            if not entry.users and key not in self._held:
                del self._locks[key]  # a failed connect: no session, so no lock either

    async def use(
        self,
        key: SessionKey,
        target: UpstreamTarget,
        run: Callable[[Client], Awaitable[T]],
        *,
        retry_broken: bool,
        on_log: LogSink | None = None,
        on_input: InputSink | None = None,
    ) -> T:
        """Run `run` on the key's session; a session the upstream expired is re-established
        and `run` repeated once (it never reached the tool); a broken connection too when
        `retry_broken` (read-only or idempotent tools).

        Raises:
            ToolExecutionError: the upstream cannot be reached.
            MCPError: the upstream answered with an error.
        """
        for attempt in range(2):
            held = await self._get(key, target)
            held.last_used = asyncio.get_running_loop().time()
            try:
                result = await self._observed(held, run, on_log, on_input)
                if not self._caching:
                    await self._drop(key)
                return result
            except MCPError as error:
                broken = error.code == CONNECTION_CLOSED
                if not (session_expired(error) or broken):
                    raise
                await self._drop(key)
                if attempt or (broken and not retry_broken):
                    raise
                log.info("upstream %s: %s; opening a new session", target.server.name, error.error.message)
            except Exception:
                if held.alive:
                    raise
                await self._drop(key)
                if attempt or not retry_broken:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    async def _observed(
        held: UpstreamConnection,
        run: Callable[[Client], Awaitable[T]],
        on_log: LogSink | None,
        on_input: InputSink | None = None,
    ) -> T:
        """`run`, with the log notifications and requests to the client that come with its
        requests going to `on_log` and `on_input` (relay/routing.py: not another call's)."""
        with held.calls.call(CallSinks(on_log, on_input)):
            return await run(held.client)

    async def _drop(self, key: SessionKey) -> None:
        held = self._held.pop(key, None)
        entry = self._locks.get(key)
        if entry is not None and not entry.users:
            # Nobody is in or waiting on _get for this key: its lock goes with its session
            # (else the last one out of _get drops it).
            del self._locks[key]
        if held is not None:
            await held.close()

    async def _evict(self) -> None:
        while len(self._held) >= self._max:
            oldest = min(self._held, key=lambda k: self._held[k].last_used)
            await self._drop(oldest)

    async def sweep(self) -> int:
        """Close the sessions idle for longer than idle_s (and dead ones); returns how many."""
        now = asyncio.get_running_loop().time()
        stale = [k for k, h in self._held.items() if not h.alive or now - h.last_used > self._idle_s]
        for key in stale:
            await self._drop(key)
        return len(stale)

    def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="upstream-session-sweeper")

    async def _sweep_forever(self) -> None:
        while self._held:
            await asyncio.sleep(min(self._idle_s, 30.0) / 2)
            await self.sweep()

    def forget_subject(self, tenant: str, subject: str) -> None:
        """The erasure barrier (a SubjectCache): the subject's sessions leave the pool now, so
        no later call reuses them, and are closed (DELETE at the upstream) in the background."""
        for key in [k for k in self._held if k[:2] == (tenant, subject)]:
            self._close_later(key)

    def set_caching(self, enabled: bool) -> None:
        """Off (the barrier unreachable): every session is closed, and each call's is closed
        after it until on again."""
        self._caching = enabled
        if not enabled:
            for key in list(self._held):
                self._close_later(key)

    def _close_later(self, key: SessionKey) -> None:
        held = self._held.pop(key)
        entry = self._locks.get(key)
        if entry is not None and not entry.users:
            del self._locks[key]
        task = asyncio.get_running_loop().create_task(held.close(), name="upstream-session-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every held session (worker shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(BaseException):
                await self._sweeper
        for key in list(self._held):
            await self._drop(key)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
