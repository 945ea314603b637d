"""`mcp-ledger token` mints what the gateway at that host and port accepts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mcp_ledger.cli.app import app
from mcp_ledger.mcp_api.auth.access_tokens import JwtVerifier
from mcp_ledger.mcp_api.auth.dev_tokens import dev_public_keys
from mcp_ledger.settings import Settings


async def test_a_token_for_a_port_is_accepted_by_the_gateway_on_that_port(tmp_path: Path) -> None:
    args = ["token", "--sub", "alice", "--tenant", "acme", "--role", "viewer", "--port", "8766"]
    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    for port, accepted in ((8766, True), (8000, False)):
        settings = Settings(data_dir=tmp_path, port=port)
        verifier = JwtVerifier(
            dev_public_keys(tmp_path),
            issuer=settings.auth_issuer,
            audience=settings.audience,
            algorithms=["ES256"],
        )
        assert (await verifier.verify_token(token) is not None) is accepted


def test_a_tenant_that_cannot_be_a_name_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["token", "--sub", "a", "--tenant", "a:b", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
