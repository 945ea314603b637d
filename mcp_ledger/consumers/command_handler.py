"""The command handler: decide a CallTool, run the tool, append the outcome exactly once.

Owns the loop load -> admit -> run -> append with optimistic concurrency and idempotency by
command key (the command's tenant, subject and id). A command that was already recorded
appends nothing (redelivery after a crash or a rebalance). Publishing the appended events
is the outbox relay's job; the handler only hands them over through `on_appended` so the
fast path does not wait for a sweep. Each command is one unit of work of the key scopes:
its subject's key is pinned before anything of theirs is opened, so a command racing an
erasure never seals what it read under a new key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from mcp_ledger.checks.arguments import check_arguments
from mcp_ledger.consumers.mapping import EventMapper, command_key
from mcp_ledger.consumers.registry.registered_tools import ToolSource
from mcp_ledger.consumers.session_cache import SessionCache
from mcp_ledger.consumers.tasks.cancellation import TaskCancellations, ToolStoppedError
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome, ToolRunner
from mcp_ledger.crypto.ports import KeyScopes
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import CallTool, Command, CommandEnvelope
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.session.decisions import admit, opening_events, outcome_events, refusal_events
from mcp_ledger.domain.streams import call_stream
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.eventstore.ports import AppendResult, ConcurrencyError, EventStore, StoredEvent
from mcp_ledger.observability.scopes import command_scope

log = logging.getLogger(__name__)

AppendedCallback = Callable[[Sequence[StoredEvent]], Awaitable[None]]
OtherCommands = Callable[[Command], Awaitable[None]]


def _command_wire(payload: bytes) -> dict[str, Any] | None:
    """The command object of an envelope on the wire (still sealed), None if there is none."""
    try:
        envelope = json.loads(payload)
    except ValueError:
        return None
    command = envelope.get("command") if isinstance(envelope, dict) else None
    return command if isinstance(command, dict) else None


class CommandConflictError(Exception):
    """The stream kept moving under the handler; the command will be redelivered."""


class CommandHandler:
    """Handles commands from ledger.commands for one worker."""

    def __init__(
        self,
        store: EventStore,
        catalog: Mapping[str, ToolSpec],
        runners: Mapping[str, ToolRunner],
        on_appended: AppendedCallback,
        *,
        max_attempts: int = 5,
        session_ttl: float | None = None,
        registered: ToolSource | None = None,
        sealer: RecordSealer | None = None,
        others: OtherCommands | None = None,
        session_cache_seconds: float = 5.0,
        scopes: KeyScopes | None = None,
        cancellations: TaskCancellations | None = None,
    ) -> None:
        self._cancellations = cancellations
        self._scopes = scopes
        self._sealer = sealer
        self._mapper = EventMapper(sealer)
        self._store = store
        self._sessions = SessionCache(store, self._mapper.to_domain, max_age=session_cache_seconds)
        self._session_ttl = session_ttl
        self._catalog = catalog
        self._runners = runners
        self._registered = registered
        self._on_appended = on_appended
        self._max_attempts = max_attempts
        self._others = others

    async def handle_payload(self, payload: bytes) -> None:
        """Handle one message from the commands topic; a malformed one is logged and dropped
        because no worker could ever decide it."""
        wire = _command_wire(payload)
        with self._unit():
            if wire is not None and self._sealer is not None:
                # Pinned before the command's own fields are opened; opened before validation,
                # because a sealed field does not fit its field's type.
                await self._pin(wire.get("tenant"), wire.get("subject"))
                wire = await self._sealer.open_command(wire)
            try:
                command = CommandEnvelope.model_validate({"command": wire}).command
            except ValueError:
                log.error("dropping malformed command message (%d bytes)", len(payload))
                return
            with command_scope(command):
                if not isinstance(command, CallTool):
                    # Plan commands have their own handler (consumers/plans/commands.py).
                    if self._others is None:
                        log.error("dropping %s: no handler for it on this worker", command.kind)
                        return
                    await self._others(command)
                    return
                await self.handle(command)

    @property
    def sessions(self) -> SessionCache:
        """The session cache (the erasure barrier drops subjects from it)."""
        return self._sessions

    async def opened(self, stored: StoredEvent) -> StoredEvent:
        """A recorded event with its personal fields opened (for callers reading outcomes)."""
        return await self._mapper.open(stored)

    async def handle(self, command: CallTool) -> AppendResult:
        """Decide and record one command; idempotent by command id.

        Raises:
            CommandConflictError: concurrent writers kept winning; redeliver later.
        """
        with self._unit():
            return await self._handle(command, await self._pin(command.tenant, command.subject))

    async def _handle(self, command: CallTool, key_id: str | None) -> AppendResult:
        # Both reads at once: the redelivery check and the state the decision needs.
        key = command_key(command)
        recorded, session = await asyncio.gather(
            self._store.events_for_command(key), self._load(command.stream_id, key_id)
        )
        if recorded:
            return AppendResult(events=tuple(recorded), duplicate=True)
        log.debug("command %s started: %s", command.command_id, command.tool_name)
        for attempt in range(self._max_attempts):
            if attempt:
                session = await self._load(command.stream_id, key_id)
            stream_id, events = await self._decide(command, session)
            expected = session.version if stream_id == session.stream_id else 0
            try:
                records = await self._mapper.to_new_events(command, events, stream_id)
                result = await self._store.append(stream_id, expected, records, command=key)
            except ConcurrencyError:
                continue
            if not result.duplicate:
                await self._on_appended(result.events)
            return result
        raise CommandConflictError(f"command {command.command_id} lost {self._max_attempts} races")

    async def _load(self, stream_id: str, key_id: str | None) -> Session:
        return await self._sessions.load(stream_id, key_id=key_id)

    def _unit(self) -> AbstractContextManager[None]:
        return nullcontext() if self._scopes is None else self._scopes.unit()

    async def _pin(self, tenant: object, subject: object) -> str | None:
        if self._scopes is None or not isinstance(tenant, str) or not isinstance(subject, str):
            return None
        return await self._scopes.pin(tenant, subject)

    async def _decide(self, command: CallTool, session: Session) -> tuple[str, list[DomainEvent]]:
        spec, runner = self._catalog.get(command.tool_name), self._runners.get(command.tool_name)
        if spec is None and self._registered is not None:
            spec, runner = await self._registered.resolve(command) or (None, None)
        refusal = admit(command, spec, session, self._session_ttl)
        if refusal is not None:
            target = (
                session.stream_id if refusal.in_session else call_stream(command.tenant, command.command_id)
            )
            return target, refusal_events(command, refusal)
        assert spec is not None
        problem = await check_arguments(spec.input_schema, command.arguments)
        if problem is not None:
            return session.stream_id, outcome_events(command, (), [], None, ("invalid_arguments", problem))
        outcome = await self._run(command, session, runner)
        if isinstance(outcome, ToolExecutionError):
            error = (outcome.code, outcome.message)
            return session.stream_id, outcome_events(command, (), [], None, error)
        effects = list(outcome.effects)
        if spec.opens_session:
            effects = opening_events(command) + effects
        return session.stream_id, outcome_events(
            command, effects, outcome.content, outcome.structured, is_error=outcome.is_error
        )

    async def _run(
        self, command: CallTool, session: Session, runner: ToolRunner | None
    ) -> ToolOutcome | ToolExecutionError:
        if runner is None:
            return ToolExecutionError(
                "tool_unavailable", f"no runner for {command.tool_name!r} on this worker"
            )
        try:
            work = runner(ToolInvocation(command=command, session=session))
            if self._cancellations is None:
                return await work
            return await self._cancellations.run(command, work)
        except ToolStoppedError:
            return ToolExecutionError("cancelled", "the task was cancelled; the tool was stopped")
        except ToolExecutionError as error:
            return error
        except Exception as error:  # boundary: a tool's bug becomes a recorded failure, not a crash
            log.exception("tool %s failed", command.tool_name)
            return ToolExecutionError("tool_error", f"{type(error).__name__}: {error}")
