"""A gateway running inside the test's event loop on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import Runtime, running
from tests.support.loopback import serving


@dataclass
class RunningGateway:
    url: str
    runtime: Runtime


def embedded_settings(data_dir: Path, *, no_auth: bool = True) -> Settings:
    """Embedded-default settings that ignore any LEDGER_* of the calling shell; tests about
    tools run as the local user (loopback --no-auth), tests about auth pass no_auth=False."""
    return Settings(bus="memory://", store="", state="memory://", data_dir=data_dir, no_auth=no_auth)


@asynccontextmanager
async def gateway(settings: Settings, *, worker: bool = True) -> AsyncIterator[RunningGateway]:
    """Run API (and worker) with these settings; yields the MCP URL."""
    async with running(settings, api=True, worker=worker) as runtime:
        assert runtime.app is not None
        async with serving(runtime.app) as base:
            yield RunningGateway(f"{base}/mcp", runtime)
