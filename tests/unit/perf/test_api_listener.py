"""The API's listening socket: connections accepted on it have Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

from mcp_ledger.cli.serve import _listen


async def test_connections_accepted_by_the_api_listener_send_without_waiting_for_acks() -> None:
    listener = _listen("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: socket.socket = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=listener)
    try:
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(accepted, timeout=10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
