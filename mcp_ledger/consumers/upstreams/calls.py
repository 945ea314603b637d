"""Calling an upstream tool from a worker: the runner behind every MCP-bound tool.

The command handler records the call like any other (arguments and result sealed, one
outcome); this module only reaches the upstream: the CCPA check by the server's
`data_recipient`, the circuit breaker, the held session (sessions.py), the per-tool
timeout, retries of a broken connection only for tools annotated readOnlyHint or
idempotentHint, and the result kept as the upstream sent it (every content type,
structuredContent, isError). Upstream progress reaches `progress` when a relay is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any, Protocol, TypeVar

from mcp import Client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, ErrorData

from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome
from mcp_ledger.consumers.upstreams.auth.secrets import UpstreamSecrets
from mcp_ledger.consumers.upstreams.connection import UpstreamTarget
from mcp_ledger.consumers.upstreams.health import Breakers, HealthKey
from mcp_ledger.consumers.upstreams.relay.backchannel import (
    AgentRefusedError,
    AgentRoundError,
    BusBackChannel,
)
from mcp_ledger.consumers.upstreams.relay.parking import TAKEN_OVER, TaskInputs
from mcp_ledger.consumers.upstreams.relay.rounds import AskRound, call_with_rounds
from mcp_ledger.consumers.upstreams.relay.routing import InputSink, LogSink
from mcp_ledger.consumers.upstreams.sessions import SessionKey, UpstreamSessions
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.registry.bindings import McpBinding
from mcp_ledger.domain.upstreams.capabilities import (
    MISSING_CAPABILITY,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    missing_message,
)
from mcp_ledger.domain.upstreams.events import INPUT_ROUND
from mcp_ledger.domain.upstreams.model import UpstreamServer, definition_hash

log = logging.getLogger(__name__)

T = TypeVar("T")


class ProgressRelay(Protocol):
    """Where a call's upstream notifications go (consumers/upstreams/relay/progress.py)."""

    async def __call__(
        self, command: CallTool, progress: float, total: float | None, message: str | None
    ) -> None: ...

    async def log(self, command: CallTool, level: str, logger: str | None, data: Any) -> None: ...


def session_key(command: CallTool, scope: str | None, server: UpstreamServer) -> SessionKey:
    """One upstream session per ledger session (else per subject) and server entry; a
    reconfigured entry gets new sessions. Keyed by subject too, so an erasure finds them."""
    entry = definition_hash(server.model_dump(mode="json"))
    offers = "*" if command.client_capabilities is None else ",".join(command.client_capabilities)
    ledger_session = command.session_id or ""
    return (command.tenant, command.subject, ledger_session, scope or "", server.name, entry, offers)


def outcome_of(result: Any) -> ToolOutcome:
    """The recorded outcome of an upstream CallToolResult, content blocks in wire form."""
    content = [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]
    structured = result.structured_content
    return ToolOutcome(
        content, structured if isinstance(structured, dict) else None, is_error=bool(result.is_error)
    )


class UpstreamCalls:
    """Runs MCP-bound tools against their upstreams."""

    def __init__(
        self,
        sessions: UpstreamSessions,
        secrets: UpstreamSecrets,
        *,
        breakers: Breakers | None = None,
        privacy: PrivacyChoices | None = None,
        progress: ProgressRelay | None = None,
        observe: Callable[[str, str, str, float], None] | None = None,
        backchannel: BusBackChannel | None = None,
        input_wait_s: float = 30.0,
        task_inputs: TaskInputs | None = None,
    ) -> None:
        self._task_inputs = task_inputs
        self._input_wait_s = input_wait_s
        self._observe = observe
        self._backchannel = backchannel
        self._sessions = sessions
        self._secrets = secrets
        self._breakers = breakers or Breakers()
        self._privacy = privacy
        self._progress = progress

    async def close(self) -> None:
        """Close every held upstream session."""
        await self._sessions.close()

    @property
    def sessions(self) -> UpstreamSessions:
        """The held upstream sessions (an erasure barrier's subject cache)."""
        return self._sessions

    @property
    def breakers(self) -> Breakers:
        return self._breakers

    async def target(
        self,
        tenant: str,
        scope: str | None,
        server: UpstreamServer,
        offers: tuple[str, ...] | None = None,
        era: str = "auto",
        subject: str | None = None,
    ) -> UpstreamTarget:
        secret = (
            None if server.auth.kind == "none" else await self._secrets.secret(tenant, scope, server.name)
        )
        legacy_first = offers is None and era == "legacy"
        return UpstreamTarget(server, secret, tenant, scope, subject, offers, legacy_first)

    async def run(
        self, call: ToolInvocation, binding: McpBinding, server: UpstreamServer | None, scope: str | None
    ) -> ToolOutcome:
        """Call the upstream tool for this command.

        Raises:
            ToolExecutionError: refused, unreachable, timed out, or the circuit is open.
        """
        command = call.command
        if server is None:
            raise ToolExecutionError(
                "tool_unavailable", f"upstream server {binding.server!r} is not registered"
            )
        relay_to = self._progress

        async def relay(progress: float, total: float | None, message: str | None) -> None:
            if relay_to is not None:
                await relay_to(command, progress, total, message)

        callback: ProgressFnT | None = relay if relay_to is not None else None

        async def log(level: str, logger: str | None, data: Any) -> None:
            if relay_to is not None:
                await relay_to.log(command, level, logger, data)

        parking = self._parking(command)
        if parking is not None and await parking.taken_over(command):
            raise ToolExecutionError("upstream_input_lost", TAKEN_OVER)
        # A task's call may wait for its owner's input on top of its own timeout.
        timeout_s = binding.timeout_s + (parking.wait_s if parking is not None else 0.0)
        ask_round = self.rounds(command, binding.timeout_s)

        async def send(client: Client) -> Any:
            if ask_round is not None:
                return await call_with_rounds(
                    client,
                    binding.tool,
                    command.arguments,
                    timeout_s=timeout_s,
                    progress=callback,
                    ask_round=ask_round,
                    first_responses=command.input_responses,
                )
            return await client.call_tool(
                binding.tool,
                command.arguments,
                read_timeout_seconds=timeout_s,
                progress_callback=callback,
            )

        what = f"{binding.tool} took longer than {binding.timeout_s:g}s"
        result = await self.request(
            command,
            server,
            scope,
            send,
            timeout_s=timeout_s,
            idempotent=binding.idempotent,
            what=what,
            on_log=log if relay_to is not None else None,
            on_input=self._asking(command, binding.timeout_s),
        )
        return outcome_of(result)

    def _parking(self, command: CallTool) -> TaskInputs | None:
        """Where a task's upstream input waits for tasks/update (relay/parking.py): for tasks
        of 2026-07-28 agents only, as a 2025-11-25 session's (SEP-1686) has no tasks/update."""
        if command.task_id is None or command.client_capabilities is None:
            return None
        return self._task_inputs

    def rounds(self, command: CallTool, timeout_s: float) -> AskRound | None:
        """For a 2026-07-28 agent (one that declared its capabilities with the request): each
        input_required round of its upstream asked of it whole (relay/rounds.py), its retry
        awaited at most input_wait_s (an abandoned round must not hold a command slot long)."""
        channel = self._backchannel
        if channel is None or command.client_capabilities is None:
            return None
        parking = self._parking(command)
        if parking is not None:
            return parking.round_asker(command)
        timeout_s = min(timeout_s, self._input_wait_s)

        async def ask(requests: dict[str, Any]) -> dict[str, Any]:
            try:
                answer = await channel.ask(command, INPUT_ROUND, {"inputRequests": requests}, timeout_s)
            except AgentRefusedError as refused:
                raise AgentRoundError(refused.code, refused.message, refused.data) from None
            return answer if isinstance(answer, dict) else {}

        return ask

    def _asking(self, command: CallTool, timeout_s: float) -> InputSink | None:
        """The upstream's requests to its client during this call, asked of the call's agent
        over the back channel (relay/backchannel.py); None without one."""
        channel = self._backchannel
        if channel is None:
            return None
        parking = self._parking(command)
        if parking is not None:
            return parking.request_asker(command)

        async def ask(method: str, params: dict[str, Any] | None) -> dict[str, Any] | ErrorData:
            try:
                result = await channel.ask(command, method, params, timeout_s)
            except AgentRefusedError as refused:
                return ErrorData(code=refused.code, message=refused.message, data=refused.data)
            return result if isinstance(result, dict) else {}

        return ask

    async def request(
        self,
        command: CallTool,
        server: UpstreamServer,
        scope: str | None,
        send: Callable[[Client], Awaitable[T]],
        *,
        timeout_s: float,
        idempotent: bool,
        what: str = "the request timed out",
        on_log: LogSink | None = None,
        on_input: InputSink | None = None,
    ) -> T:
        """One request to the upstream on the command's held session: the CCPA check, the
        breaker, the timeout, and every failure as one clear ToolExecutionError.

        Raises:
            ToolExecutionError: refused, unreachable, timed out, or the circuit is open.
        """
        if self._privacy is not None:
            await self._privacy.check_sharing(command, server.data_recipient, f"tool:{command.tool_name}")
        key: HealthKey = (command.tenant, scope, server.name)
        era = "legacy" if command.client_capabilities is None else "auto"
        target = await self.target(
            command.tenant, scope, server, command.client_capabilities, era, command.subject
        )
        probe = self._breakers.admit(key)
        started = asyncio.get_running_loop().time()
        outcome: str | None = None  # None to the end: cancelled, so neither answer nor failure
        channel = self._backchannel
        try:
            with nullcontext() if channel is None else channel.running(command):
                result = await self._attempt(
                    command, server, scope, send, target, timeout_s, idempotent, what, on_log, on_input
                )
            outcome = "ok"
        except ToolExecutionError as error:
            outcome = error.code.removeprefix("upstream_")
            raise
        finally:
            elapsed = asyncio.get_running_loop().time() - started
            self._breakers.settle(key, probe, outcome, elapsed)
            if self._observe is not None:
                self._observe(command.tenant, server.name, outcome or "cancelled", elapsed)
        return result

    async def _attempt(
        self,
        command: CallTool,
        server: UpstreamServer,
        scope: str | None,
        send: Callable[[Client], Awaitable[T]],
        target: UpstreamTarget,
        timeout_s: float,
        idempotent: bool,
        what: str,
        on_log: LogSink | None,
        on_input: InputSink | None = None,
    ) -> T:
        try:
            async with asyncio.timeout(timeout_s + 5):
                return await self._sessions.use(
                    session_key(command, scope, server),
                    target,
                    send,
                    retry_broken=idempotent,
                    on_log=on_log,
                    on_input=on_input,
                )
        except MCPError as error:
            if error.code == REQUEST_TIMEOUT and not isinstance(error, AgentRoundError):
                # The SDK's own read timeout: no answer of the upstream, so a failure (a hang).
                raise ToolExecutionError("upstream_timeout", f"{server.name}: {what}") from None
            if error.code == CONNECTION_CLOSED:
                raise ToolExecutionError(
                    "upstream_unreachable", f"{server.name}: the connection broke: {error.error.message}"
                ) from None
            if error.code == MISSING_REQUIRED_CLIENT_CAPABILITY:
                data = error.error.data if isinstance(error.error.data, dict) else {}
                message = missing_message(
                    f"{server.name}: {error.error.message}", data.get("requiredCapabilities")
                )
                raise ToolExecutionError(MISSING_CAPABILITY, message) from None
            # The upstream answered: a protocol-level error, recorded as the tool's failure.
            raise ToolExecutionError("upstream_error", f"{server.name}: {error.error.message}") from None
        except ToolExecutionError:
            raise
        except TimeoutError:
            raise ToolExecutionError("upstream_timeout", f"{server.name}: {what}") from None
        except Exception as error:  # boundary: any transport failure is one clear, recorded error
            reason = f"{type(error).__name__}: {error}"[:300]
            log.info("upstream %s call failed: %s", server.name, reason)
            raise ToolExecutionError("upstream_unreachable", f"{server.name}: {reason}") from None
