"""A database or state store that fails during a request reaches the agent as a retryable
JSON-RPC error naming the service, in both protocol eras, and without the failure's details.

The failures are real: the clients (redis, SQLAlchemy over asyncpg) connect to a loopback port
that is bound but not listening, so the connection is refused."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import mcp_types as types
import pytest
import redis.asyncio
from mcp import Client
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.mcp_api.transport.outages import ServiceOutages, failed_service

Failing = Callable[[int], Awaitable[None]]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, so no one else takes it meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def _redis_read(port: int) -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2)
    try:
        await client.get("ledger:view")
    finally:
        await client.aclose()


async def _database_read(port: int) -> None:
    engine = create_async_engine(f"postgresql+asyncpg://ledger:secret@127.0.0.1:{port}/ledger")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def _a_bug(port: int) -> None:
    raise ValueError(f"not a service failure ({port})")


def _server(read: Failing, port: int) -> Server[Any]:
    async def call(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        await read(port)
        return types.CallToolResult(content=[])

    server: Server[Any] = Server("outages")
    server.add_request_handler("tools/call", types.CallToolRequestParams, call)
    server.middleware.append(ServiceOutages())
    return server


async def _error_of(read: Failing, port: int, mode: str) -> types.ErrorData:
    async with Client(_server(read, port), mode=mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("read_view", {})
    return raised.value.error


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize(("read", "service"), [(_redis_read, "state store"), (_database_read, "database")])
async def test_a_refused_service_connection_is_a_retryable_error_that_names_the_service(
    refused_port: int, mode: str, read: Failing, service: str
) -> None:
    error = await _error_of(read, refused_port, mode)
    assert error.code == types.INTERNAL_ERROR
    assert error.data == {"retryable": True, "service": service}
    assert error.message == f"Service unavailable: the {service} did not answer; the request may be retried"
    assert str(refused_port) not in error.message
    assert "secret" not in str(error.data)


async def test_a_bug_in_a_handler_is_still_a_generic_internal_error(refused_port: int) -> None:
    error = await _error_of(_a_bug, refused_port, "legacy")
    assert error.data is None
    assert "retryable" not in error.message
    assert failed_service(ValueError("x")) is None


def test_a_redis_failure_inside_an_exception_group_is_found() -> None:
    import redis.exceptions

    group = BaseExceptionGroup("task group", [ValueError("other"), redis.exceptions.TimeoutError("t")])
    assert failed_service(group) == "state store"
