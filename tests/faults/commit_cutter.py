"""A TCP proxy to PostgreSQL that loses the acknowledgement of a committed append, on purpose.

It forwards both directions byte for byte and reads the PostgreSQL wire protocol just enough
(message type and length; the SQL of Parse and simple Query messages; the parameters of Bind)
to know, per connection, whether the open transaction inserted a command's idempotency record
(`INSERT INTO commands`, with a command named: PostgreSQL's one append statement carries that
INSERT for every append, and an append of no command, such as a task's, writes no record):
an event store append of a command. When armed, it lets the server's
CommandComplete for that transaction's COMMIT through and then closes the connection before
the ReadyForQuery that would end the exchange. The append is committed; the writer sees a
dropped connection in the middle of its COMMIT and must retry without recording twice.

Owns that proxy (on a loopback port of its own, on its own event loop in a thread, because the
gateway's processes connect while the test thread blocks) and the record of each cut: the
string parameters of the cut transaction's command record, one of which is the command id.
Does not know TLS: it answers for the server's one-byte reply to an SSLRequest, and a server
that accepts TLS (`S`) is refused, since nothing after it could be read.
"""

from __future__ import annotations

import asyncio
import re
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

_SSL_OR_GSS = (80877103, 80877104)
# Anywhere in the statement: PostgreSQL's append is one statement (WITH ... INSERT INTO commands).
_INSERT_COMMAND = re.compile(r'\bINSERT\s+INTO\s+"?commands"?\s', re.IGNORECASE)
# That statement writes the record only when a command is named: the first value its SELECT
# casts (the command's tenant) is then set; for an append of no command it is NULL.
_RECORDED_TENANT = re.compile(
    r'\bINSERT\s+INTO\s+"?commands"?\s*\([^)]*\)\s*SELECT\s+CAST\(\$(\d+)', re.IGNORECASE
)
START_SECONDS = 10.0


@dataclass
class _Connection:
    """What one client connection's open transaction has done."""

    statements: dict[bytes, str] = field(default_factory=dict)
    command_params: list[str] = field(default_factory=list)


@dataclass
class CommitCutter:
    """The proxy's policy and record: while `armed`, every `every`-th committed append loses
    its acknowledgement, until `wanted` have."""

    upstream: tuple[str, int]
    every: int = 2
    wanted: int = 5
    armed: bool = False
    port: int = 0
    cuts: list[list[str]] = field(default_factory=list)
    """The string parameters of each cut transaction's command record."""
    appends_seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _cut_now(self, conn: _Connection) -> bool:
        if not conn.command_params:
            return False
        with self._lock:
            self.appends_seen += 1
            if not self.armed or len(self.cuts) >= self.wanted or self.appends_seen % self.every:
                return False
            self.cuts.append(list(conn.command_params))
            return True

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        conn = _Connection()
        try:
            server_in, server_out = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_out.close()
            return
        try:
            await _startup(client_in, client_out, server_in, server_out)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            for writer in (client_out, server_out):
                writer.close()
            return
        tasks = [
            asyncio.create_task(self._from_client(conn, client_in, server_out)),
            asyncio.create_task(self._from_server(conn, server_in, client_out)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_out, server_out):
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()

    async def _from_client(
        self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                kind, length = struct.unpack("!ci", await reader.readexactly(5))
                body = await reader.readexactly(length - 4)
                self._observe_client(conn, kind, body)
                writer.write(struct.pack("!ci", kind, length) + body)
                await writer.drain()

    def _observe_client(self, conn: _Connection, kind: bytes, body: bytes) -> None:
        if kind == b"Q":
            sql = body.rstrip(b"\0").decode(errors="replace").strip().upper()
            if sql.startswith(("BEGIN", "START TRANSACTION", "ROLLBACK")):
                conn.command_params = []
        elif kind == b"P":
            name, rest = body.split(b"\0", 1)
            conn.statements[name] = rest.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == b"B" and _records_a_command(conn.statements.get(_bind_statement(body), ""), body):
            conn.command_params = _bind_strings(body)

    async def _from_server(
        self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                kind, length = struct.unpack("!ci", await reader.readexactly(5))
                body = await reader.readexactly(length - 4)
                writer.write(struct.pack("!ci", kind, length) + body)
                await writer.drain()
                if kind == b"C" and body.startswith(b"COMMIT\0"):
                    if self._cut_now(conn):
                        return  # the ReadyForQuery that would acknowledge the COMMIT is dropped
                    conn.command_params = []


async def _startup(
    client_in: asyncio.StreamReader,
    client_out: asyncio.StreamWriter,
    server_in: asyncio.StreamReader,
    server_out: asyncio.StreamWriter,
) -> None:
    """The untyped start of a connection, in order: any SSLRequest / GSSENCRequest and the
    server's one-byte answer to it, then the StartupMessage.

    Raises:
        ValueError: the server accepted TLS (nothing after it could be read).
    """
    while True:
        head = await client_in.readexactly(8)
        length, code = struct.unpack("!ii", head)
        server_out.write(head + await client_in.readexactly(length - 8))
        await server_out.drain()
        if code not in _SSL_OR_GSS:
            return
        answer = await server_in.readexactly(1)
        if answer != b"N":
            raise ValueError("the server accepted TLS or GSS encryption")
        client_out.write(answer)
        await client_out.drain()


def _bind_statement(body: bytes) -> bytes:
    _portal, statement, _rest = body.split(b"\0", 2)
    return statement


def _records_a_command(sql: str, bind: bytes) -> bool:
    """Whether the statement bound by `bind` writes a command's idempotency record (an append
    of a command; a task's or a registry's own append names none and is not one)."""
    if not _INSERT_COMMAND.search(sql):
        return False
    tenant = _RECORDED_TENANT.search(sql)
    if tenant is None:  # a plain INSERT of the record
        return True
    values = _bind_values(bind)
    index = int(tenant.group(1)) - 1
    return index < len(values) and values[index] is not None


def _bind_values(body: bytes) -> list[bytes | None]:
    """The Bind message's parameters, in order (None for a NULL)."""
    _portal, _statement, rest = body.split(b"\0", 2)
    (formats,) = struct.unpack_from("!h", rest)
    offset = 2 + 2 * formats
    (count,) = struct.unpack_from("!h", rest, offset)
    offset += 2
    values: list[bytes | None] = []
    for _ in range(count):
        (size,) = struct.unpack_from("!i", rest, offset)
        offset += 4
        values.append(None if size < 0 else rest[offset : offset + size])
        offset += max(size, 0)
    return values


def _bind_strings(body: bytes) -> list[str]:
    """The Bind message's parameters that decode as text (text and varchar are UTF-8 in both
    formats), in order."""
    values = []
    for value in _bind_values(body):
        if value:
            with suppress(UnicodeDecodeError):
                values.append(value.decode())
    return values


@contextmanager
def commit_cutter(upstream: tuple[str, int], *, every: int = 2, wanted: int = 5) -> Iterator[CommitCutter]:
    """A running cutter in front of `upstream` (disarmed), stopped at the end of the block.

    Raises:
        RuntimeError: the proxy did not start.
    """
    cutter = CommitCutter(upstream, every=every, wanted=wanted)
    started, stop = threading.Event(), threading.Event()

    async def main() -> None:
        server = await asyncio.start_server(cutter._serve, "127.0.0.1", 0)
        cutter.port = int(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            while not stop.is_set():
                await asyncio.sleep(0.1)

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="commit-cutter", daemon=True)
    thread.start()
    if not started.wait(START_SECONDS):
        raise RuntimeError("the commit cutter did not start")
    try:
        yield cutter
    finally:
        stop.set()
        thread.join(START_SECONDS)
