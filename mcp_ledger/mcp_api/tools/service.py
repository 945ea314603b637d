"""MCPToolService, transport-neutral: register tools, list capabilities, execute one call.

The one code path behind the HTTP mapping (registration_http.py) and gRPC (grpc_api/):
registration is checked at the edge (structure, schemas; the worker holds the allowlist and
decides again), then sent as the same register_tools command an MCP client would send, so
roles and rules are the worker's. A call is the ordinary CallTool command. Outcomes are
plain data that each transport maps to its own status codes. Authentication is not here:
callers pass an Identity their transport verified.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp_ledger.checks.arguments import argument_size, check_arguments
from mcp_ledger.checks.registrations import check_registration, parse_definitions
from mcp_ledger.crypto.ports import KeyStoreError
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.registry.registration import RegistrationError, RegistrationPolicy
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.rate_limits import RateGuard
from mcp_ledger.producers.ports import BusError
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.sessions.ports import SessionViewStore

OutcomeKind = Literal[
    "ok",
    "invalid",
    "forbidden",
    "refused",
    "timeout",
    "unavailable",
    "unknown_tool",
    "too_large",
    "rate_limited",
]


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    """What happened, for a transport to map: `kind` to a status, `title` and `problems` to
    its error body, `data` (JSON) to its success body (for "rate_limited": the refusal's
    retry_after_seconds, scope and limit), `event` to the recorded terminal event."""

    kind: OutcomeKind
    title: str = ""
    problems: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    event: Mapping[str, Any] | None = None
    command_id: str = ""
    """The command sent, when one was (empty for refusals at the edge)."""


def capability(spec: ToolSpec) -> dict[str, Any]:
    """A tool as ListCapabilities and GET /v1/capabilities describe it."""
    return {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "inputSchema": spec.input_schema,
        "outputSchema": spec.output_schema,
        "readOnly": spec.read_only,
        "minimumRole": spec.minimum_role,
        "annotations": spec.annotations,
    }


def _outcome_of(event: Mapping[str, Any], command_id: str) -> ServiceOutcome:
    data = event["data"]
    if event["event_type"] == "ToolCallDenied":
        return ServiceOutcome("forbidden", str(data["reason"]), event=event, command_id=command_id)
    if event["event_type"] == "ToolFailed":
        problems = (str(data["message"]),)
        return ServiceOutcome(
            "refused", str(data["error_code"]), problems, event=event, command_id=command_id
        )
    return ServiceOutcome("ok", data=dict(data.get("structured") or {}), event=event, command_id=command_id)


class ToolService:
    """Registration, capabilities and calls for an already authenticated caller."""

    def __init__(
        self,
        gateway: CommandGateway,
        catalog: ToolCatalog,
        views: SessionViewStore,
        *,
        builtins: Mapping[str, ToolSpec],
        max_argument_bytes: int,
        rate_guard: RateGuard | None = None,
    ) -> None:
        self._rate_guard = rate_guard
        self._gateway = gateway
        self._catalog = catalog
        self._views = views
        self._builtins = builtins
        self._max_argument_bytes = max_argument_bytes

    async def register(self, identity: Identity, tools: Any) -> ServiceOutcome:
        """Check definitions at the edge, then register them through the worker."""
        try:
            # Without the allowlist (the worker holds it): structure and schemas only.
            check_registration(parse_definitions(tools), RegistrationPolicy(allowed_hosts=("*",)))
        except RegistrationError as error:
            return ServiceOutcome("invalid", "invalid tool definitions", tuple(error.problems))
        limited = await self._rate_limited(identity)
        if limited is not None:
            return limited
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            tool_name="register_tools",
            arguments={"tools": tools},
        )
        return await self._send(command)

    async def own_session(self, identity: Identity, session_id: str | None) -> str | None:
        """The session if it is the caller's; another's session is treated as none at all."""
        if not session_id:
            return None
        view = await self._views.get(identity.tenant, session_id)
        return session_id if view is not None and view.subject == identity.subject else None

    async def capabilities(self, identity: Identity, session_id: str | None) -> list[dict[str, Any]]:
        """The tools this caller may call, built-in and registered (the session's if theirs)."""
        specs = await self._catalog.visible(identity.tenant, await self.own_session(identity, session_id))
        return [
            capability(spec)
            for spec in specs
            if access_problem(identity.roles, spec.minimum_role, spec.allowed_roles) is None
        ]

    async def find(self, identity: Identity, session_id: str | None, name: str) -> ToolSpec | None:
        spec = self._builtins.get(name)
        if spec is not None:
            return spec
        entry = await self._catalog.find(identity.tenant, await self.own_session(identity, session_id), name)
        return None if entry is None else entry.spec

    async def call(
        self,
        identity: Identity,
        session_id: str | None,
        tool_name: str,
        arguments: dict[str, Any],
        *,
        on_submit: Callable[[str], Awaitable[None]] | None = None,
        correlation_id: str = "",
    ) -> ServiceOutcome:
        """One tool call, refused at the edge like MCP tools/call, else recorded by a worker;
        `on_submit` hears the command id once the call passed the edge checks."""
        spec = await self.find(identity, session_id, tool_name)
        if spec is None:
            return ServiceOutcome("unknown_tool", f"unknown tool {tool_name!r}")
        size = argument_size(arguments)
        if size > self._max_argument_bytes:
            limit = self._max_argument_bytes
            return ServiceOutcome("too_large", f"arguments are {size} bytes; the limit is {limit}")
        problem = await check_arguments(spec.input_schema, arguments)
        if problem is not None:
            return ServiceOutcome("invalid", "invalid_arguments", (problem,))
        limited = await self._rate_limited(identity)
        if limited is not None:
            return limited
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=new_session_id() if spec.opens_session else session_id or None,
            tool_name=spec.name,
            arguments=arguments,
            correlation_id=correlation_id,
        )
        if on_submit is not None:
            await on_submit(command.command_id)
        return await self._send(command)

    async def _rate_limited(self, identity: Identity) -> ServiceOutcome | None:
        """Charge one execution to the caller (after every other check, so only what would
        run is charged); the refusal as an outcome, or None."""
        refusal = None if self._rate_guard is None else await self._rate_guard.refusal(identity)
        if refusal is None:
            return None
        return ServiceOutcome("rate_limited", refusal.message, data=refusal.data())

    async def _send(self, command: CallTool) -> ServiceOutcome:
        try:
            event = await self._gateway.call(command)
        except CommandTimeoutError as error:
            return ServiceOutcome("timeout", str(error), command_id=command.command_id)
        except BusError:
            return ServiceOutcome("unavailable", "the command bus is unavailable; try again")
        except KeyStoreError as error:  # e.g. this process's KEK cannot unwrap the caller's key
            return ServiceOutcome("unavailable", str(error))
        return _outcome_of(event, command.command_id)
