"""Runners of the upstream-server tools: register_server, remove_server, refresh_server,
approve_server, reject_server, list_servers (specs in domain/upstreams/tools.py).

Arguments become an UpstreamServer (pydantic refuses anything unknown) and the secret,
which only ever goes into the sealed event. A refused registration is a ToolFailed naming
every problem; nothing is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mcp_ledger.consumers.registry.dispatch import ToolTable, refusals, registry_scope
from mcp_ledger.consumers.tools import (
    ToolExecutionError,
    ToolInvocation,
    ToolOutcome,
    structured_outcome,
)
from mcp_ledger.consumers.upstreams.registrar import UpstreamRegistrar
from mcp_ledger.domain.upstreams.model import UpstreamServer
from mcp_ledger.eventstore.ports import StoredEvent

STDIO_REFUSED = "stdio upstream servers are allowed only from operator configuration, never from a call"


def server_from(
    arguments: dict[str, Any], stdio: Mapping[str, tuple[str, ...]] | None = None
) -> tuple[UpstreamServer, str | None]:
    """The entry and its secret from register_server's arguments; `stdio` names the operator's
    stdio servers the caller may register (only the local tenant gets any).

    Raises:
        ToolExecutionError: a command given, an unknown stdio name, or an invalid entry.
    """
    if arguments.get("command"):
        raise ToolExecutionError("registration_refused", STDIO_REFUSED)
    fields = {k: v for k, v in arguments.items() if k not in {"scope", "command", "stdio"}}
    if "stdio" in arguments:
        command = (stdio or {}).get(str(arguments["stdio"]))
        if command is None or arguments["stdio"] != arguments.get("name"):
            raise ToolExecutionError(
                "registration_refused", f"no operator's stdio server {arguments['stdio']!r}"
            )
        fields["command"] = list(command)
    elif not arguments.get("url"):
        raise ToolExecutionError("registration_refused", "give the server's url")
    auth = dict(fields.pop("auth", {}) or {})
    secret = auth.pop("secret", None)
    try:
        server = UpstreamServer.model_validate({**fields, "auth": auth})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ToolExecutionError("registration_refused", problems) from None
    if server.auth.kind != "none" and not secret:
        raise ToolExecutionError("registration_refused", f"auth {server.auth.kind!r} needs a secret")
    kind = server.auth.kind
    if kind in {"client_credentials", "token_exchange"} and not (
        server.auth.token_url and server.auth.client_id
    ):
        raise ToolExecutionError("registration_refused", f"{kind} needs token_url and client_id")
    return server, secret


def _hashes(call: ToolInvocation) -> dict[str, str]:
    """The tool -> definition hash mapping an approval or rejection names (schema-checked)."""
    hashes = call.command.arguments.get("hashes")
    if not isinstance(hashes, dict) or not hashes:
        raise ToolExecutionError("invalid_arguments", "name the definitions by hash: {tool: sha256}")
    return {str(tool): str(digest) for tool, digest in hashes.items()}


def _summary(scope: str | None, name: str, version: int, appended: list[StoredEvent]) -> ToolOutcome:
    exposed = [
        str(e.data["definition"]["name"])
        for e in appended
        if e.event_type in {"ToolRegistered", "ToolUpdated"}
    ]
    removed = [str(e.data["name"]) for e in appended if e.event_type == "ToolRemoved"]
    changed = [e.data for e in appended if e.event_type == "UpstreamToolChanged"]
    rejected = [str(e.data["tool"]) for e in appended if e.event_type == "UpstreamToolRejected"]
    return structured_outcome(
        {
            "scope": "tenant" if scope is None else "session",
            "server": name,
            "version": version,
            "exposed": exposed,
            "removed": removed,
            "pending": [str(c["tool"]) for c in changed],
            "pending_hashes": {str(c["tool"]): str(c["definition_hash"]) for c in changed},
            "rejected": rejected,
        }
    )


class UpstreamTools(ToolTable):
    """The upstream-server tools' runners, bound to a registrar."""

    TOOLS = (
        "register_server",
        "remove_server",
        "refresh_server",
        "approve_server",
        "reject_server",
        "list_servers",
    )

    def __init__(
        self,
        registrar: UpstreamRegistrar,
        *,
        stdio: Mapping[str, tuple[str, ...]] | None = None,
        local_tenant: str = "local",
    ) -> None:
        self._registrar = registrar
        self._stdio = stdio or {}
        self._local_tenant = local_tenant

    async def register_server(self, call: ToolInvocation) -> ToolOutcome:
        scope = registry_scope(call)
        stdio = self._stdio if call.command.tenant == self._local_tenant else None
        server, secret = server_from(call.command.arguments, stdio)
        with refusals():
            version, appended = await self._registrar.register(call.command, scope, server, secret)
        return _summary(scope, server.name, version, appended)

    async def remove_server(self, call: ToolInvocation) -> ToolOutcome:
        scope, name = registry_scope(call), str(call.command.arguments["name"])
        with refusals():
            version, appended = await self._registrar.remove(call.command, scope, name)
        return _summary(scope, name, version, appended)

    async def _refresh(self, call: ToolInvocation, approved: dict[str, str] | None) -> ToolOutcome:
        scope, name = registry_scope(call), str(call.command.arguments["name"])
        with refusals():
            version, appended = await self._registrar.refresh(call.command, scope, name, approved=approved)
        return _summary(scope, name, version, appended)

    async def refresh_server(self, call: ToolInvocation) -> ToolOutcome:
        return await self._refresh(call, None)

    async def approve_server(self, call: ToolInvocation) -> ToolOutcome:
        return await self._refresh(call, _hashes(call))

    async def reject_server(self, call: ToolInvocation) -> ToolOutcome:
        scope, name = registry_scope(call), str(call.command.arguments["name"])
        reason = call.command.arguments.get("reason")
        with refusals():
            version, appended = await self._registrar.reject(
                call.command, scope, name, _hashes(call), None if reason is None else str(reason)
            )
        return _summary(scope, name, version, appended)

    async def list_servers(self, call: ToolInvocation) -> ToolOutcome:
        command = call.command
        scopes: list[str | None] = [None] if command.session_id is None else [None, command.session_id]
        if command.arguments.get("scope") == "session":
            scopes = [command.session_id] if command.session_id else []
        return structured_outcome({"servers": await self._registrar.listing(command.tenant, scopes)})
