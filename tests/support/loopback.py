"""An ASGI app served by uvicorn on 127.0.0.1 and a free port, inside the test's event loop:
the fixture servers (gateway, authorization and token servers, JWKS, the pet service) all
start and stop the same way (`listening` for a config of their own, TLS say)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

START_SECONDS = 10.0


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the test runner owns signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """`app` on a free loopback port until the block ends; yields its base URL
    (`http://127.0.0.1:PORT`, no trailing slash)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    async with listening(config) as port:
        yield f"http://127.0.0.1:{port}"


@asynccontextmanager
async def listening(config: uvicorn.Config) -> AsyncIterator[int]:
    """uvicorn with `config` (port 0: a free one) until the block ends; yields the port."""
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(START_SECONDS):
        while not server.started:
            await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=START_SECONDS)
