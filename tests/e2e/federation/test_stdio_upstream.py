"""stdio upstreams come only from operator configuration (LEDGER_UPSTREAM_STDIO): the local
tenant's, run by the worker as a process per upstream session and reaped when the session
is closed; another tenant cannot register the operator's command, nobody can give one."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.wiring.upstreams import front_upstreams
from tests.e2e.federation.steps import token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway

COMMAND = [sys.executable, "-m", "tests.support.stdio_upstream"]


@pytest.fixture
async def operated(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"upstream_stdio": {"local": COMMAND}, "upstream_idle_seconds": 0.3}
    )
    async with gateway(settings) as running:
        yield running


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # a zombie (not reaped) would still answer
    except ProcessLookupError:
        return False
    return True


async def test_the_operator_s_stdio_server_runs_for_the_local_tenant_and_is_reaped_when_idle(
    operated: RunningGateway,
) -> None:
    settings = operated.runtime.settings
    lines = await front_upstreams(settings, operated.runtime)
    assert lines == ["upstream local: 1 tools from stdio:local"]
    local = token(operated, tenant=settings.local_tenant, roles=("viewer",))
    async with mcp_client(operated.url, token=local) as client:
        pid = int(text_of(await client.call_tool("pid", {})))
    assert pid != os.getpid()
    async with asyncio.timeout(15):  # idle 0.3 s: the session is closed and its process reaped
        while _alive(pid):
            await asyncio.sleep(0.05)


async def test_another_tenant_cannot_register_the_operator_s_stdio_server(operated: RunningGateway) -> None:
    async with mcp_client(operated.url, token=token(operated, tenant="acme")) as client:
        by_name = await client.call_tool("register_server", {"name": "local", "stdio": "local"})
        by_command = await client.call_tool("register_server", {"name": "local", "command": COMMAND})
        listed = structured(await client.call_tool("list_servers", {}))
    assert by_name.is_error
    assert "no operator's stdio server" in text_of(by_name)
    assert by_command.is_error
    assert "only from operator configuration" in text_of(by_command)
    assert listed == {"servers": []}
