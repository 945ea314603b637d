"""The command line against a running gateway (auth on): `servers add|list|approve|remove`
and an MCPServer manifest through `registry apply`, each the gateway's own tool over MCP."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner, Result

from mcp_ledger.cli.app import app
from tests.e2e.federation.steps import opened_events, register, token, tool_names
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream, change_mutable


async def _cli(gw: RunningGateway, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    environment = {"LEDGER_TOKEN": token(gw), **(env or {})}
    return await asyncio.to_thread(runner.invoke, app, [*args, "--url", gw.url], env=environment)


async def test_servers_add_list_approve_and_remove_from_the_command_line(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    added = await _cli(
        secured, "servers", "add", "fixture", upstream.url, "--prefix", "fx", "--deny", "fails"
    )
    listed = await _cli(secured, "servers", "list")
    names = await tool_names(secured)
    approved = await _cli(secured, "servers", "approve", "fixture")
    removed = await _cli(secured, "servers", "remove", "fixture")
    assert added.exit_code == 0, added.output
    assert "12 tools exposed" in added.output
    assert "fixture" in listed.output
    assert "fx_echo" in names
    assert "fx_fails" not in names
    assert approved.exit_code == 0, approved.output
    assert "nothing pending" in approved.output
    assert removed.exit_code == 0, removed.output
    assert "fx_echo" not in await tool_names(secured)


async def test_servers_approve_shows_the_pending_hashes_and_reject_records_those_shown(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    change_mutable(upstream, "A changed description.")
    async with mcp_client(secured.url, token=token(secured)) as admin:
        pending = structured(await admin.call_tool("refresh_server", {"name": "fixture"}))["pending_hashes"]
    shown = await _cli(secured, "servers", "approve", "fixture")
    stale = await _cli(secured, "servers", "approve", "fixture", "--hash", f"mutable={'0' * 64}")
    rejected = await _cli(secured, "servers", "reject", "fixture", "--all-shown", "--reason", "unasked")
    assert shown.exit_code == 2, shown.output
    assert pending["mutable"] in shown.output
    assert "--all-shown" in shown.output
    assert stale.exit_code == 2, stale.output
    assert "mutable" in stale.output
    assert rejected.exit_code == 0, rejected.output
    assert pending["mutable"] in rejected.output
    recorded = [e.data for e in await opened_events(secured) if e.event_type == "UpstreamToolRejected"]
    assert [(e["tool"], e["definition_hash"]) for e in recorded] == [("mutable", pending["mutable"])]


async def test_an_mcpserver_manifest_is_applied_with_its_secret_from_the_environment(
    secured: RunningGateway, upstream: RunningUpstream, tmp_path: Path
) -> None:
    manifest = tmp_path / "servers.yaml"
    manifest.write_text(
        f"""
apiVersion: mcp-ledger.io/v1alpha1
kind: MCPServer
metadata: {{name: fixture}}
spec:
  url: {upstream.url}
  prefix: fx
  toolRoles: {{echo: operator}}
  auth: {{kind: bearer, secretFromEnv: FIXTURE_TOKEN}}
"""
    )
    applied = await _cli(secured, "registry", "apply", str(manifest), env={"FIXTURE_TOKEN": "from-env"})
    assert applied.exit_code == 0, applied.output
    assert "fx_echo" in await tool_names(secured, roles=("operator",))
    assert "fx_echo" not in await tool_names(secured, roles=("viewer",))


async def test_an_invalid_mcpserver_manifest_sends_nothing(
    secured: RunningGateway, upstream: RunningUpstream, tmp_path: Path
) -> None:
    manifest = tmp_path / "servers.yaml"
    manifest.write_text(
        f"""
apiVersion: mcp-ledger.io/v1alpha1
kind: MCPServer
metadata: {{name: fixture}}
spec: {{url: {upstream.url}, command: [sh, -c, id]}}
"""
    )
    applied = await _cli(secured, "registry", "apply", str(manifest))
    assert applied.exit_code == 2
    assert "operator configuration" in applied.output
    assert upstream.state.calls.total() == 0
