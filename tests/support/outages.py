"""Outages a test may cause without touching the shared services: a redis-server of its own
that it stops and starts again, and a TCP path to a shared service that it cuts and restores.

Ports are picked below Linux's ephemeral range (as scripts/services.sh does): a server that
comes back on its old port must not find it taken by some client socket's local end.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

EPHEMERAL_START = 32768


def stable_port() -> int:
    """A free loopback port below the ephemeral range."""
    for _ in range(200):
        port = random.randrange(20000, EPHEMERAL_START)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


class OwnRedis:
    """A redis-server on its own port, without persistence, started and stopped by the test."""

    def __init__(self, log: Path) -> None:
        self.port = stable_port()
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers PING (bounded)."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(
                [*argv, "--save", "", "--appendonly", "no"], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        """Stop it (SIGTERM, bounded); its data is gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None


@contextmanager
def own_redis(tmp: Path) -> Iterator[OwnRedis]:
    """A running OwnRedis, stopped at the end of the block."""
    redis = OwnRedis(tmp / "redis.log")
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


class TcpCut:
    """A loopback port forwarding to a real service, for processes that should lose it: `cut`
    refuses new connections and drops open ones; `restore` forwards again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port = stable_port()
        self._target = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-cut", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def restore(self) -> None:
        self._run(self._listen())

    def cut(self) -> None:
        self._run(self._cut())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        self._open.update({writer, up_writer})
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with suppress(ConnectionError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()


@contextmanager
def tcp_cut(target_port: int) -> Iterator[TcpCut]:
    """A TcpCut forwarding to `target_port`, closed at the end of the block."""
    cut = TcpCut(target_port)
    cut.restore()
    try:
        yield cut
    finally:
        cut.close()
