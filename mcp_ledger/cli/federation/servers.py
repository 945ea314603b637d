"""`mcp-ledger servers add|list|remove|approve|reject|refresh`: upstream MCP servers from the shell.

Each runs the gateway's own tool (register_server, list_servers, remove_server,
approve_server, reject_server, refresh_server) over MCP with the official client, so the gateway's checks
and roles apply. Secrets are read from an environment variable (--secret-env), never from
the command line. Approve and reject name the definitions they decide by hash: those given
with --hash, or with --all-shown those the command just listed as pending.
A token for a gateway with auth on comes from --token or LEDGER_TOKEN.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated, Any

import httpx2
import typer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from rich.console import Console
from rich.table import Table

from mcp_ledger.cli.options import console, fail
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.upstreams import assertion_signer

servers_app = typer.Typer(help="Upstream MCP servers behind the gateway.", no_args_is_help=True)
UrlOpt = Annotated[str, typer.Option("--url", help="the gateway's MCP endpoint")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="LEDGER_TOKEN", help="access token")]
ScopeOpt = Annotated[str, typer.Option("--scope", help="tenant (default) or session")]
DEFAULT_URL = "http://127.0.0.1:8000/mcp"


async def _call(url: str, token: str | None, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(timeout=120.0, headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError("".join(getattr(block, "text", "") for block in result.content))
    return dict(result.structured_content or {})


def run_tool(url: str, token: str | None, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The tool's structured result.

    Raises:
        typer.Exit: refused, or the gateway is unreachable (one clear line).
    """
    try:
        return asyncio.run(_call(url, token, tool, arguments))
    except RuntimeError as error:
        raise fail(str(error)) from None
    except Exception as error:  # boundary: connection and protocol errors become one line
        raise fail(f"cannot reach the gateway at {url}: {error}") from None


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        key, sep, item = value.partition("=")
        if not sep:
            raise fail(f"{what} {value!r}: expected TOOL=VALUE")
        pairs[key] = item
    return pairs


def _auth(auth: str, header: str, secret_env: str | None, oauth: dict[str, str | None]) -> dict[str, Any]:
    if auth == "none":
        return {"kind": "none"}
    if secret_env is None or not os.environ.get(secret_env):
        raise fail(f"--auth {auth} needs --secret-env naming a set environment variable")
    entry = {"kind": auth, "header": header, "secret": os.environ[secret_env]}
    if auth in {"client_credentials", "token_exchange"}:
        entry.update({k: v for k, v in oauth.items() if v})
    return entry


@servers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the server's name")],
    server_url: Annotated[str, typer.Argument(metavar="SERVER_URL", help="its Streamable HTTP endpoint")],
    prefix: Annotated[str | None, typer.Option(help="expose tools as PREFIX_tool")] = None,
    allow: Annotated[list[str] | None, typer.Option(help="fnmatch pattern of tools to expose")] = None,
    deny: Annotated[list[str] | None, typer.Option(help="fnmatch pattern of tools to hide")] = None,
    role: Annotated[list[str] | None, typer.Option(help="TOOL=ROLE minimum role of one tool")] = None,
    minimum_role: Annotated[str | None, typer.Option(help="minimum role of every tool")] = None,
    data_recipient: Annotated[str, typer.Option(help="third_party, first_party, processor")] = "third_party",
    timeout: Annotated[float, typer.Option(help="seconds a call may take")] = 60.0,
    pinning: Annotated[bool, typer.Option(help="hold changed definitions until approved")] = True,
    task_support: Annotated[
        list[str] | None,
        typer.Option(help="TOOL=optional|required: its calls run as MCP tasks (TOOL may be a pattern)"),
    ] = None,
    auth: Annotated[
        str, typer.Option(help="none, bearer, header, client_credentials or token_exchange")
    ] = "none",
    header: Annotated[str, typer.Option(help="the header of --auth header")] = "authorization",
    secret_env: Annotated[str | None, typer.Option(help="environment variable holding the secret")] = None,
    token_url: Annotated[str | None, typer.Option(help="OAuth token endpoint")] = None,
    client_id: Annotated[str | None, typer.Option(help="the gateway's OAuth client id")] = None,
    auth_scope: Annotated[str | None, typer.Option(help="OAuth scopes to ask for")] = None,
    audience: Annotated[str | None, typer.Option(help="token exchange: the audience asked for")] = None,
    resource: Annotated[str | None, typer.Option(help="token exchange: the resource asked for")] = None,
    scope: ScopeOpt = "tenant",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Register an upstream MCP server: discovered, pinned, exposed, every call recorded."""
    arguments: dict[str, Any] = {
        "name": name,
        "url": server_url,
        "allow": allow or [],
        "deny": deny or [],
        "tool_roles": _pairs(role, "--role"),
        "data_recipient": data_recipient,
        "timeout_s": timeout,
        "pinning": pinning,
        "task_support": _pairs(task_support, "--task-support"),
        "auth": _auth(
            auth,
            header,
            secret_env,
            {
                "token_url": token_url,
                "client_id": client_id,
                "scope": auth_scope,
                "audience": audience,
                "resource": resource,
            },
        ),
        "scope": scope,
    }
    if prefix:
        arguments["prefix"] = prefix
    if minimum_role:
        arguments["minimum_role"] = minimum_role
    result = run_tool(url, token, "register_server", arguments)
    console.print(f"registered {name}: {len(result.get('exposed', []))} tools exposed")
    Console().print_json(json.dumps(result))


@servers_app.command("assertion-jwks")
def assertion_jwks() -> None:
    """The public key set of the subject assertions this deployment's workers sign for token
    exchanges (from LEDGER_SECRET_KEY, or the data directory's secret): give it to the
    authorization server, which trusts it for `urn:ietf:params:oauth:token-type:jwt` subject
    tokens of issuer LEDGER_PUBLIC_URL."""
    signer = assertion_signer(Settings())
    Console().print_json(json.dumps({"issuer": signer.issuer, **signer.jwks()}))


@servers_app.command("list")
def list_servers(url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """The upstream servers with their tools, pending changes and health."""
    result = run_tool(url, token, "list_servers", {})
    table = Table("server", "scope", "url", "tools", "pending", "breaker", "calls", "errors")
    for server in result.get("servers", []):
        health = server.get("health") or {}
        table.add_row(
            server["name"],
            server["scope"],
            str(server.get("url")),
            str(len(server.get("tools", []))),
            ", ".join(server.get("pending", [])) or "-",
            str(health.get("breaker")),
            str(health.get("calls")),
            str(health.get("errors")),
        )
    Console().print(table)


def _named(tool: str, name: str, scope: str, url: str, token: str | None) -> None:
    result = run_tool(url, token, tool, {"name": name, "scope": scope})
    Console().print_json(json.dumps(result))


@servers_app.command("remove")
def remove(name: str, scope: ScopeOpt = "tenant", url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """Remove an upstream server and its tools."""
    _named("remove_server", name, scope, url, token)


HashOpt = Annotated[
    list[str] | None, typer.Option("--hash", help="TOOL=SHA256 of a pending definition (repeatable)")
]
AllShownOpt = Annotated[bool, typer.Option("--all-shown", help="decide every pending definition shown")]


def _pending(name: str, scope: str, url: str, token: str | None) -> dict[str, str]:
    """The server's pending definitions (tool -> sha256), printed."""
    servers = run_tool(url, token, "list_servers", {"scope": scope})["servers"]
    found = next((s for s in servers if s["name"] == name and s["scope"] == scope), None)
    if found is None:
        raise fail(f"no upstream server {name!r} in the {scope} registry")
    pending = {str(k): str(v) for k, v in (found.get("pending_hashes") or {}).items()}
    # Plain lines, never wrapped: a hash is copied from here into --hash.
    typer.echo(f"{name}: pending definitions (tool sha256)" if pending else f"{name}: nothing pending")
    for tool, digest in pending.items():
        typer.echo(f"  {tool} {digest}")
    return pending


def _decide(tool: str, name: str, hashes: list[str] | None, all_shown: bool, scope: str,
            url: str, token: str | None, reason: str | None = None) -> None:  # fmt: skip
    """Name the hashes to decide: given with --hash, or those just shown with --all-shown."""
    if hashes and all_shown:
        raise fail("give --hash TOOL=SHA256 or --all-shown, not both")
    chosen = _pairs(hashes, "--hash") if hashes else _pending(name, scope, url, token)
    if not chosen:
        return
    if not (hashes or all_shown):
        raise fail("nothing decided: name the definitions with --hash TOOL=SHA256, or --all-shown")
    arguments: dict[str, Any] = {"name": name, "hashes": chosen, "scope": scope}
    if reason:
        arguments["reason"] = reason
    Console().print_json(json.dumps(run_tool(url, token, tool, arguments)))


@servers_app.command("approve")
def approve(
    name: str,
    hashes: HashOpt = None,
    all_shown: AllShownOpt = False,
    scope: ScopeOpt = "tenant",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Show the server's pending definitions; expose those named by hash (--hash, --all-shown).
    Refused, naming the tool, when the upstream now sends another definition."""
    _decide("approve_server", name, hashes, all_shown, scope, url, token)


@servers_app.command("reject")
def reject(
    name: str,
    hashes: HashOpt = None,
    all_shown: AllShownOpt = False,
    reason: Annotated[str | None, typer.Option(help="why (recorded, sealed)")] = None,
    scope: ScopeOpt = "tenant",
    url: UrlOpt = DEFAULT_URL,
    token: TokenOpt = None,
) -> None:
    """Show the server's pending definitions; record the rejection of those named by hash:
    they stay unexposed until the upstream sends a different definition."""
    _decide("reject_server", name, hashes, all_shown, scope, url, token, reason)


@servers_app.command("refresh")
def refresh(name: str, scope: ScopeOpt = "tenant", url: UrlOpt = DEFAULT_URL, token: TokenOpt = None) -> None:
    """Discover again; changed pinned definitions are recorded and held back."""
    _named("refresh_server", name, scope, url, token)


def register(app: typer.Typer) -> None:
    """Hook the servers commands into the `mcp-ledger` app."""
    app.add_typer(servers_app, name="servers")
