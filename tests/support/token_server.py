"""A small OAuth 2.1 authorization server for federation tests: the client-credentials grant
at POST /token (HTTP Basic client authentication), uvicorn on a free loopback port. It
counts the tokens it issued; tokens are `token-N`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class TokenServer:
    client_id: str
    client_secret: str
    url: str = ""
    issued: int = 0


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def token_server(client_id: str, client_secret: str) -> AsyncIterator[TokenServer]:
    server = TokenServer(client_id, client_secret)

    async def token(request: Request) -> JSONResponse:
        expected = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        server.issued += 1
        return JSONResponse(
            {"access_token": f"token-{server.issued}", "token_type": "Bearer", "expires_in": 3600}
        )

    app = Starlette(routes=[Route("/token", token, methods=["POST"])])
    running = _Quiet(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(running.serve())
    async with asyncio.timeout(10):
        while not running.started:
            await asyncio.sleep(0.01)
    server.url = f"http://127.0.0.1:{running.servers[0].sockets[0].getsockname()[1]}/token"
    try:
        yield server
    finally:
        running.should_exit = True
        await asyncio.wait_for(task, timeout=10)
