"""`mcp-ledger registry …` and `mcp-ledger bench registry`: the registry's command line.

`registry apply FILE.yaml` validates MCPTool manifests locally (clear errors, nothing sent
when any is invalid), then registers them through a running gateway's register_tools tool
with the official MCP client, so the gateway's own checks and roles apply.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import httpx2
import typer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from rich.console import Console

from mcp_ledger.bench.registry import run_registry_bench
from mcp_ledger.bench.targets import distributed_env
from mcp_ledger.checks.manifests import load_manifests
from mcp_ledger.checks.server_manifests import load_server_manifests
from mcp_ledger.cli.federation.servers import run_tool
from mcp_ledger.domain.registry.model import ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.settings import Settings

console = Console(stderr=True)
registry_app = typer.Typer(help="The tool registry.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


async def _register(
    url: str, definitions: list[ToolDefinition], token: str | None = None
) -> tuple[bool, str, Any]:
    tools = [definition.model_dump(mode="json") for definition in definitions]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(timeout=60.0, headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("register_tools", {"tools": tools})
    text = "".join(getattr(block, "text", "") for block in result.content)
    return bool(result.is_error), text, result.structured_content


@registry_app.command("apply")
def apply(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="YAML with MCPTool and MCPServer resources")
    ],
    url: Annotated[str, typer.Option(help="the gateway's MCP endpoint")] = "http://127.0.0.1:8000/mcp",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate only")] = False,
    token: Annotated[str | None, typer.Option("--token", envvar="LEDGER_TOKEN", help="access token")] = None,
) -> None:
    """Register the tools of MCPTool manifests and the servers of MCPServer manifests
    (all validated first; nothing is sent when any is invalid)."""
    text = file.read_text()
    try:
        definitions = load_manifests(text)
        servers = load_server_manifests(text)
    except RegistrationError as error:
        for problem in error.problems:
            console.print(f"[red]invalid:[/red] {problem}")
        raise typer.Exit(code=2) from None
    names = ", ".join([d.name for d in definitions] + [f"server {s['name']}" for s in servers])
    if dry_run:
        console.print(f"valid: {names}")
        return
    if definitions:
        try:
            failed, text, structured = asyncio.run(_register(url, definitions, token))
        except Exception as error:  # boundary: connection and protocol errors become one line
            raise _fail(f"cannot reach the gateway at {url}: {error}") from None
        if failed:
            raise _fail(text)
        console.print(f"registered ({', '.join(d.name for d in definitions)}): {json.dumps(structured)}")
    for server in servers:
        result = run_tool(url, token, "register_server", server)
        console.print(f"registered server {server['name']}: {len(result.get('exposed', []))} tools exposed")


def bench_registry(
    rounds: Annotated[int, typer.Option(min=3, max=10_000, help="registrations to time")] = 50,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path(
        "bench-registry.json"
    ),
) -> None:
    """Register -> visible in tools/list on another API replica (distributed when LEDGER_BUS,
    LEDGER_STORE and LEDGER_STATE name Kafka, PostgreSQL and Redis; else embedded)."""
    distributed = distributed_env(Settings())
    report = asyncio.run(run_registry_bench(rounds, distributed, lambda text: console.print(f"… {text}")))
    output.write_text(json.dumps(report, indent=2) + "\n")
    Console().print_json(json.dumps(report))
    console.print(f"written to {output}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Hook the registry commands into the `mcp-ledger` app."""
    app.add_typer(registry_app, name="registry")
    bench_app.command("registry")(bench_registry)
