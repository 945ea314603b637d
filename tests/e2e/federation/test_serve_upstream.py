"""README claim: `mcp-ledger serve --no-auth --upstream NAME=URL` fronts an existing MCP server
in one command (a real `mcp-ledger serve` process, the fixture upstream in this test)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.clients import mcp_client, text_of
from tests.support.processes import ledger_processes, start_ledger
from tests.support.upstream import upstream_server


async def test_serve_with_upstream_fronts_the_server_for_the_local_user(tmp_path: Path) -> None:
    async with upstream_server(echo_name="say") as upstream:
        with ledger_processes({}, tmp_path) as started:
            serve = start_ledger(
                started, {}, tmp_path, "serve", "--no-auth", "--upstream", f"fx={upstream.url}"
            )
            await asyncio.to_thread(serve.wait_healthy, 120)
            await asyncio.to_thread(serve.wait_for_output, "upstream fx: 13 tools", 60)
            async with mcp_client(serve.url) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                said = await client.call_tool("say", {"text": "through the gateway"})
    assert {"say", "slow", "picture"} <= names
    assert text_of(said) == "through the gateway"
    assert upstream.state.calls["echo"] == 1
