"""The command gateway: publish a command, wait for the event that ends it.

Every API replica holds a broadcast subscription to ledger.events and resolves the waiters
of its own commands; so any replica can serve any session, and nothing about a command's
outcome lives only in the worker that ran it. A waiter is resolved only by an event recorded
for the tenant and subject its command was issued for: a command id is unguessable, and even
a matching one from anyone else resolves nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import AcceptPlan, CallTool, CancelPlan, CommandEnvelope, ExecutePlan
from mcp_ledger.domain.compliance.erasure import ComplianceEnvelope, EraseSubject
from mcp_ledger.domain.events import is_terminal
from mcp_ledger.observability.scopes import command_log_context
from mcp_ledger.producers.ports import Message, MessageBus

log = logging.getLogger(__name__)

Command = CallTool | AcceptPlan | ExecutePlan | CancelPlan


class CommandTimeoutError(Exception):
    """The command was accepted but its outcome did not arrive in time."""


@dataclass(frozen=True, slots=True)
class _Waiter:
    tenant: str
    subject: str
    outcome: asyncio.Future[dict[str, object]]


def _recorded_for(event: dict[str, object], waiter: _Waiter) -> bool:
    metadata = event.get("metadata")
    if not isinstance(metadata, dict):
        return False
    return metadata.get("tenant") == waiter.tenant and metadata.get("subject") == waiter.subject


class CommandGateway:
    """Sends commands to the bus and awaits their terminal events."""

    def __init__(
        self,
        bus: MessageBus,
        commands_topic: str,
        *,
        timeout: float = 30.0,
        sealer: RecordSealer | None = None,
    ) -> None:
        self._sealer = sealer
        self._bus = bus
        self._topic = commands_topic
        self._timeout = timeout
        self._waiters: dict[str, _Waiter] = {}

    async def on_event(self, message: Message) -> None:
        """Broadcast handler for ledger.events: resolve a waiter on its terminal event."""
        command_id = message.headers.get("command_id", "")
        waiter = self._waiters.get(command_id)
        if waiter is None or waiter.outcome.done() or not is_terminal(message.headers.get("event_type", "")):
            return
        event = json.loads(message.value)
        if not _recorded_for(event, waiter):
            log.warning("ignoring a terminal event for command %s recorded for someone else", command_id)
            return
        waiter.outcome.set_result(event)

    async def envelope(self, command: Command) -> bytes:
        """The command as it goes on the bus, every field off the allowlist sealed (the
        subject's key may be looked up in the store: a store outage raises here)."""
        if self._sealer is None:
            return CommandEnvelope(command=command).model_dump_json().encode()
        sealed = await self._sealer.seal_command(command)
        return json.dumps({"command": sealed}, separators=(",", ":")).encode()

    async def call(
        self, command: Command, *, wait_s: float | None = None, envelope: bytes | None = None
    ) -> dict[str, object]:
        """Publish the command (its `envelope`, made here when not given) and return its
        terminal stored event (wire form, sealed fields opened).

        Raises:
            CommandTimeoutError: no outcome within the timeout (the command may still run).
            BusError: the command could not be published.
        """
        if envelope is None:
            envelope = await self.envelope(command)
        headers = {"command_id": command.command_id, "correlation_id": command.correlation_id}
        with command_log_context(command):
            event = await self.submit(
                self._topic,
                command.partition_key,
                envelope,
                headers,
                tenant=command.tenant,
                subject=command.subject,
                wait_s=wait_s,
            )
        return event if self._sealer is None else await self._sealer.open_wire(event)

    async def erase(self, topic: str, command: EraseSubject) -> dict[str, object]:
        """Publish an erasure on the compliance topic; its terminal event as published.

        Raises:
            CommandTimeoutError: no outcome within the timeout (the erasure may still run).
            BusError: the message could not be published.
        """
        payload = ComplianceEnvelope(command=command).model_dump_json().encode()
        headers = {"command_id": command.command_id, "correlation_id": command.command_id}
        return await self.submit(
            topic, command.partition_key, payload, headers, tenant=command.tenant, subject=command.subject
        )

    async def submit(
        self,
        topic: str,
        key: str,
        payload: bytes,
        headers: Mapping[str, str],
        *,
        tenant: str,
        subject: str,
        wait_s: float | None = None,
    ) -> dict[str, object]:
        """Publish a message whose `command_id` header names the command it carries, and
        return the command's terminal stored event as published (wire form, still sealed):
        the first one recorded for `tenant` and `subject`, the command's.

        Raises:
            CommandTimeoutError: no outcome within the timeout (the command may still run).
            BusError: the message could not be published.
        """
        return await self._await(
            headers["command_id"],
            tenant,
            subject,
            wait_s,
            lambda: self._bus.publish(topic, key, payload, headers),
        )

    async def outcome(
        self,
        command: CallTool,
        *,
        wait_s: float | None = None,
        first: Callable[[], Awaitable[None]] | None = None,
    ) -> dict[str, object]:
        """The terminal stored event of a command already sent (a 2026-07-28 agent's retry of
        a call waiting for its input, on any replica), sealed fields opened; `first` runs
        once the waiter is in place (the retry's answer to the worker, so no outcome is missed).

        Raises:
            CommandTimeoutError: no outcome within the timeout (the command may still run).
            BusError: `first` could not publish.
        """
        event = await self._await(command.command_id, command.tenant, command.subject, wait_s, first)
        return event if self._sealer is None else await self._sealer.open_wire(event)

    async def _await(
        self,
        command_id: str,
        tenant: str,
        subject: str,
        wait_s: float | None,
        publish: Callable[[], Awaitable[None]] | None,
    ) -> dict[str, object]:
        waiter = _Waiter(tenant, subject, asyncio.get_running_loop().create_future())
        timeout = max(self._timeout, wait_s or 0.0)
        self._waiters[command_id] = waiter
        try:
            if publish is not None:
                await publish()
            return await asyncio.wait_for(waiter.outcome, timeout=timeout)
        except TimeoutError as error:
            raise CommandTimeoutError(
                f"command {command_id} was accepted; no outcome within {timeout:.0f}s"
            ) from error
        finally:
            self._waiters.pop(command_id, None)
