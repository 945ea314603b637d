"""README: registered HTTP tools call the real service with "no redirects, size-capped answers".

Registered tools on the embedded gateway call raw HTTP servers on loopback that this module
writes byte by byte (so they can lie about their framing) and that record every request line.
A redirect, to another path or another allowlisted host, is an error for the tool and its
target is never requested. An answer over the runner's cap (1 MiB) is refused while it
streams, whether it is chunked without a Content-Length, never ends, or declares a
Content-Length smaller than what it sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mcp_ledger.consumers.bindings.http_runner import HttpRunnerConfig
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway

CAP = HttpRunnerConfig().max_response_bytes
CHUNK = 64 * 1024

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawService:
    """A loopback HTTP/1.1 server answering each path with raw bytes; records request lines."""

    host: str
    answers: dict[str, Answer] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.requested.append(f"{method} {path}")
            await self.answers.get(path, _not_found)(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the gateway hung up on an answer it refused
        finally:
            writer.close()


async def _not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    await writer.drain()


@asynccontextmanager
async def raw_service(host: str) -> AsyncIterator[RawService]:
    service = RawService(host)
    server = await asyncio.start_server(service.handle, host, 0)
    service.port = server.sockets[0].getsockname()[1]
    try:
        yield service
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), timeout=10)


def redirect(status: int, location: str) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status} Moved\r\nlocation: {location}\r\ncontent-length: 0\r\n"
            "connection: close\r\n\r\n".encode()
        )
        await writer.drain()

    return answer


def chunked(total: int, *, then_stall: bool = False) -> Answer:
    """`total` bytes as chunks with no Content-Length; optionally never finishing."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
        sent = 0
        while sent < total:
            size = min(CHUNK, total - sent)
            writer.write(f"{size:x}\r\n".encode() + b"a" * size + b"\r\n")
            await writer.drain()
            sent += size
        if then_stall:
            await reader.read()  # until the gateway hangs up
            return
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return answer


def framed(total: int, content_length: int | None) -> Answer:
    """`total` bytes after a Content-Length header saying `content_length` (which may lie), or
    with none at all, the body then ending when the connection closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = "" if content_length is None else f"content-length: {content_length}\r\n"
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n{length}connection: close\r\n\r\n".encode()
        )
        for start in range(0, total, CHUNK):
            writer.write(b"a" * min(CHUNK, total - start))
            await writer.drain()

    return answer


def _tool(name: str, service: RawService, path: str, timeout_s: float = 10.0) -> dict[str, Any]:
    return {
        "name": name,
        "description": "a tool of the raw test service",
        "input_schema": {"type": "object"},
        "binding": {
            "kind": "http",
            "method": "GET",
            "base_url": service.base_url,
            "path": path,
            "retries": 0,
            "timeout_s": timeout_s,
        },
    }


@pytest.fixture
async def services() -> AsyncIterator[tuple[RawService, RawService]]:
    """The tool's service on 127.0.0.1 and another allowlisted host on 127.0.0.2."""
    async with raw_service("127.0.0.1") as origin, raw_service("127.0.0.2") as elsewhere:
        yield origin, elsewhere


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    # Both hosts allowlisted: only the no-redirect rule can keep a tool off the second one.
    settings = embedded_settings(tmp_path).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1,127.0.0.2"}
    )
    async with gateway(settings) as running_gateway:
        yield running_gateway


async def _register_and_call(gw: RunningGateway, *tools: dict[str, Any]) -> list[tuple[bool, str]]:
    """Register `tools`, call each once; (is_error, text) per call."""
    async with mcp_client(gw.url) as client:
        structured(await client.call_tool("register_tools", {"tools": list(tools)}))
        results = [await client.call_tool(tool["name"], {}) for tool in tools]
    return [(result.is_error, text_of(result)) for result in results]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_an_error_for_the_tool_and_its_target_is_never_requested(
    embedded: RunningGateway, services: tuple[RawService, RawService], status: int
) -> None:
    origin, elsewhere = services
    origin.answers["/same-host"] = redirect(status, "/landing")
    origin.answers["/other-host"] = redirect(status, f"{elsewhere.base_url}/landing")
    outcomes = await _register_and_call(
        embedded,
        _tool("to_same_host", origin, "/same-host"),
        _tool("to_other_host", origin, "/other-host"),
    )
    assert outcomes == [(True, f"http_error: HTTP {status}: ")] * 2
    assert origin.requested == ["GET /same-host", "GET /other-host"]
    assert elsewhere.requested == []


async def test_an_answer_under_the_cap_reaches_the_tool_whole(
    embedded: RunningGateway, services: tuple[RawService, RawService]
) -> None:
    origin, _ = services
    origin.answers["/small"] = chunked(CAP // 8)
    [(is_error, text)] = await _register_and_call(embedded, _tool("small", origin, "/small"))
    assert not is_error
    assert text == "a" * (CAP // 8)


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        pytest.param("/chunked", chunked(2 * CAP), id="chunked"),
        pytest.param("/one-byte-over", chunked(CAP + 1), id="one-byte-over"),
        pytest.param("/never-ends", chunked(CAP + CHUNK, then_stall=True), id="never-ends"),
        pytest.param("/until-close", framed(2 * CAP, content_length=None), id="until-close"),
        pytest.param("/honest-length", framed(2 * CAP, content_length=2 * CAP), id="honest-length"),
        pytest.param(
            "/overstated-length", framed(CAP + CHUNK, content_length=3 * CAP), id="overstated-length"
        ),
    ],
)
async def test_an_answer_over_the_cap_is_refused_while_it_streams(
    embedded: RunningGateway, services: tuple[RawService, RawService], path: str, answer: Answer
) -> None:
    origin, _ = services
    origin.answers[path] = answer
    loop = asyncio.get_running_loop()
    started = loop.time()
    [(is_error, text)] = await _register_and_call(embedded, _tool("big", origin, path, timeout_s=30))
    assert is_error
    assert text == f"response_too_large: the response exceeds {CAP} bytes"
    # Refused as the bytes arrive, not after the tool's 30 s timeout.
    assert loop.time() - started < 15


async def test_an_understated_content_length_cuts_the_answer_at_the_declared_size(
    embedded: RunningGateway, services: tuple[RawService, RawService]
) -> None:
    """What the header declares is all that is read: the bytes after it never reach the tool."""
    origin, _ = services
    origin.answers["/understated-length"] = framed(3 * CAP, content_length=1024)
    [(is_error, text)] = await _register_and_call(embedded, _tool("lying", origin, "/understated-length"))
    assert not is_error
    assert text == "a" * 1024
