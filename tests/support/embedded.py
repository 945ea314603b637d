"""A gateway running inside the test's event loop on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import Runtime, running


@dataclass
class RunningGateway:
    url: str
    runtime: Runtime


def embedded_settings(data_dir: Path, *, no_auth: bool = True) -> Settings:
    """Embedded-default settings that ignore any LEDGER_* of the calling shell; tests about
    tools run as the local user (loopback --no-auth), tests about auth pass no_auth=False."""
    return Settings(bus="memory://", store="", state="memory://", data_dir=data_dir, no_auth=no_auth)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns signals
        yield


@asynccontextmanager
async def gateway(settings: Settings, *, worker: bool = True) -> AsyncIterator[RunningGateway]:
    """Run API (and worker) with these settings; yields the MCP URL."""
    async with running(settings, api=True, worker=worker) as runtime:
        assert runtime.app is not None
        server = _QuietServer(uvicorn.Config(runtime.app, host="127.0.0.1", port=0, log_level="warning"))
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield RunningGateway(f"http://127.0.0.1:{port}/mcp", runtime)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=10)
