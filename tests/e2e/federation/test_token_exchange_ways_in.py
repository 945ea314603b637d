"""Every way in accepts the token_exchange auth kind: POST /v1/servers, `mcp-ledger servers
add --auth token_exchange`, an MCPServer manifest; `servers assertion-jwks` prints the key
set the authorization server must trust, and it verifies the workers' assertions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from typer.testing import CliRunner

from mcp_ledger.checks.server_manifests import load_server_manifests
from mcp_ledger.cli.app import app
from mcp_ledger.wiring.upstreams import assertion_signer
from tests.e2e.federation.steps import token
from tests.support.clients import mcp_client, text_of
from tests.support.embedded import RunningGateway
from tests.support.token_server import TokenServer, exchange_server
from tests.support.upstream import RunningUpstream

SECRET = f"exchange-secret-{uuid.uuid4().hex}"


@pytest.fixture
async def authorization(secured: RunningGateway, upstream: RunningUpstream) -> AsyncIterator[TokenServer]:
    settings = secured.runtime.settings
    printed = CliRunner().invoke(
        app,
        ["servers", "assertion-jwks"],
        env={"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_PUBLIC_URL": settings.base_url},
    )
    assert printed.exit_code == 0, printed.output
    jwks = json.loads(printed.output)
    assert jwks["keys"][0]["kid"] == assertion_signer(settings).kid
    async with exchange_server(
        tenant="acme", audience="fixture-api", issuer=jwks["issuer"], jwks=jwks, client_secret=SECRET
    ) as server:
        upstream.state.bearers = server.users
        yield server


async def _whoami(gw: RunningGateway, subject: str, tool: str) -> str:
    async with mcp_client(gw.url, token=token(gw, sub=subject, roles=("viewer",))) as client:
        return text_of(await client.call_tool(tool, {}))


async def test_a_token_exchange_upstream_registered_over_http_serves_each_user_as_themselves(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    body = {"name": "fixture", "url": upstream.url, "prefix": "fx", "auth": authorization.auth()}
    async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {token(secured)}"}) as http:
        created = await http.post(secured.url.removesuffix("/mcp") + "/v1/servers", json=body)
        listed = await http.get(secured.url.removesuffix("/mcp") + "/v1/servers")
    assert created.status_code == 201, created.text
    assert listed.json()["servers"][0]["auth"] == "token_exchange"
    assert SECRET not in listed.text
    assert await _whoami(secured, "dora", "fx_whoami") == "acme/dora"


async def test_servers_add_registers_a_token_exchange_upstream_from_the_command_line(
    secured: RunningGateway, upstream: RunningUpstream, authorization: TokenServer
) -> None:
    arguments = ["servers", "add", "fixture", upstream.url, "--prefix", "cx", "--auth", "token_exchange"]
    arguments += ["--secret-env", "FX_SECRET", "--token-url", authorization.url, "--client-id", "gateway"]
    arguments += ["--audience", "fixture-api", "--auth-scope", "tools.call", "--url", secured.url]
    environment = {"LEDGER_TOKEN": token(secured), "FX_SECRET": SECRET}
    added = await asyncio.to_thread(CliRunner().invoke, app, arguments, env=environment)
    assert added.exit_code == 0, added.output
    assert await _whoami(secured, "erin", "cx_whoami") == "acme/erin"


def test_an_mcpserver_manifest_carries_the_token_exchange_fields_and_its_secret_from_the_environment() -> (
    None
):
    manifest = """
apiVersion: mcp-ledger.io/v1alpha1
kind: MCPServer
metadata: {name: fixture}
spec:
  url: https://upstream.example/mcp
  auth: {kind: token_exchange, tokenUrl: "https://as.example/token", clientId: gateway,
         audience: fixture-api, resource: "https://upstream.example/", scope: tools.call,
         secretFromEnv: FX_SECRET}
"""
    [arguments] = load_server_manifests(manifest, {"FX_SECRET": SECRET})
    assert arguments["auth"] == {
        "kind": "token_exchange",
        "token_url": "https://as.example/token",
        "client_id": "gateway",
        "audience": "fixture-api",
        "resource": "https://upstream.example/",
        "scope": "tools.call",
        "secret": SECRET,
    }
