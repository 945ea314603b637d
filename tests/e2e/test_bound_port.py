"""`mcp-ledger serve --port 0` binds a port of the system's choosing before anything else, says
which, and is that port everywhere: the printed URL, the tokens' audience, the 401's metadata.
This is how tests start gateway processes without racing each other for a port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import mcp_client, structured
from tests.support.processes import LedgerProcess, ledger_processes, run_ledger, start_ledger


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    with ledger_processes({}, tmp_path) as started:
        yield started


def _serve(procs: list[LedgerProcess], tmp_path: Path, name: str, *, no_auth: bool) -> LedgerProcess:
    env = {"LEDGER_DATA_DIR": str(tmp_path / name), "LEDGER_NO_AUTH": str(no_auth).lower()}
    return start_ledger(procs, env, tmp_path, "serve")


async def test_two_gateways_on_port_0_get_distinct_ports_and_each_serves_on_its_own(
    procs: list[LedgerProcess], tmp_path: Path
) -> None:
    first = _serve(procs, tmp_path, "first", no_auth=True)
    second = _serve(procs, tmp_path, "second", no_auth=True)
    first.wait_healthy()
    second.wait_healthy()
    assert first.port != second.port
    assert 0 < first.port < 65536
    for gateway in (first, second):
        async with mcp_client(gateway.url) as client:
            assert structured(await client.call_tool("echo", {"text": "hi"})) == {"text": "hi"}


async def test_a_gateway_on_port_0_names_the_bound_port_in_its_audience_and_metadata(
    procs: list[LedgerProcess], tmp_path: Path
) -> None:
    gateway = _serve(procs, tmp_path, "auth", no_auth=False)
    gateway.wait_healthy()
    env = {"LEDGER_DATA_DIR": str(tmp_path / "auth")}
    token = run_ledger(
        env, "token", "--sub", "alice", "--tenant", "acme", "--port", str(gateway.port)
    ).strip()
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(gateway.url, json={})
    assert refused.status_code == 401
    metadata = f"http://127.0.0.1:{gateway.port}/.well-known/oauth-protected-resource/mcp"
    assert metadata in refused.headers["www-authenticate"]
    async with mcp_client(gateway.url, token=token) as client:
        assert structured(await client.call_tool("echo", {"text": "hi"})) == {"text": "hi"}
