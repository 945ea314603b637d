"""`mcp-ledger serve --port 0` binds a port of the system's choosing before anything else, says
which, and is that port everywhere: the printed URL, the tokens' audience, the 401's metadata.
This is how tests start gateway processes without racing each other for a port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mcp_ledger.settings import Settings
from tests.support.clients import mcp_client, structured
from tests.support.processes import LedgerProcess, ledger_processes, start_ledger
from tests.support.tokens import good_token


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LedgerProcess, LedgerProcess, Path]]:
    """Two gateways started at once on port 0: one on loopback without auth, one with auth on
    (and the data directory whose development key it trusts)."""
    tmp = tmp_path_factory.mktemp("bound-port")
    with ledger_processes({}, tmp) as started:
        open_one = start_ledger(
            started, {"LEDGER_DATA_DIR": str(tmp / "open"), "LEDGER_NO_AUTH": "true"}, tmp, "serve"
        )
        guarded = start_ledger(started, {"LEDGER_DATA_DIR": str(tmp / "guarded")}, tmp, "serve")
        open_one.wait_healthy()
        guarded.wait_healthy()
        yield open_one, guarded, tmp / "guarded"


async def test_two_gateways_on_port_0_get_distinct_ports_and_each_serves_on_its_own(
    gateways: tuple[LedgerProcess, LedgerProcess, Path],
) -> None:
    open_one, guarded, _ = gateways
    assert open_one.port != guarded.port
    assert 0 < open_one.port < 65536
    async with mcp_client(open_one.url) as client:
        assert structured(await client.call_tool("echo", {"text": "hi"})) == {"text": "hi"}


async def test_a_gateway_on_port_0_names_the_bound_port_in_its_audience_and_metadata(
    gateways: tuple[LedgerProcess, LedgerProcess, Path],
) -> None:
    _, guarded, data_dir = gateways
    # A token for the gateway at the port it reported (what `mcp-ledger token --port` mints).
    token = good_token(Settings(data_dir=data_dir, port=guarded.port))
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(guarded.url, json={})
    assert refused.status_code == 401
    metadata = f"http://127.0.0.1:{guarded.port}/.well-known/oauth-protected-resource/mcp"
    assert metadata in refused.headers["www-authenticate"]
    async with mcp_client(guarded.url, token=token) as client:
        assert structured(await client.call_tool("echo", {"text": "hi"})) == {"text": "hi"}
