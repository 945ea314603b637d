"""Subjects' CCPA opt-outs on the worker side: reading and recording them in the event store,
the opt-out tools' runners, and the check before personal data leaves for a third party.

The choice lives in the subject's privacy stream (domain/privacy.py) and is read from the
store when it matters (a third-party call, an export for sharing), so every worker and the
CLI agree without a read model. Appends are idempotent by a command id derived from the
request, and record only changes. Does not decide the rule (the domain does) nor run tools.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from mcp_ledger.consumers.mapping import command_key, command_metadata, to_domain
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolOutcome, structured_outcome
from mcp_ledger.domain.commands import Command
from mcp_ledger.domain.compliance.privacy import (
    ADMIN_OPT_OUT_TOOL,
    OPT_OUT_TOOL,
    SharingRefused,
    SubjectOptedIn,
    SubjectOptedOut,
    may_share,
    opted_out,
    privacy_stream,
)
from mcp_ledger.domain.events import DomainEvent, to_record
from mcp_ledger.domain.personal import DataRecipient
from mcp_ledger.eventstore.ports import ConcurrencyError, EventStore, NewEvent, StoredEvent

AppendedCallback = Callable[[Sequence[StoredEvent]], Awaitable[None]]


class PrivacyBusyError(Exception):
    """The subject's privacy stream kept changing under this writer."""


async def _nothing_to_publish(_events: Sequence[StoredEvent]) -> None:
    return None


class PrivacyChoices:
    """Opt-outs read from and recorded in the subjects' privacy streams."""

    def __init__(
        self,
        store: EventStore,
        on_appended: AppendedCallback = _nothing_to_publish,
        *,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 5,
    ) -> None:
        self._store = store
        self._on_appended = on_appended
        self._clock = clock
        self._max_attempts = max_attempts

    async def opted_out(self, tenant: str, subject: str) -> bool:
        """Whether the subject's latest choice is an opt-out."""
        stored = await self._store.read_stream(privacy_stream(tenant, subject))
        return opted_out(to_domain(event) for event in stored)

    async def record(self, command: Command, subject: str, opt_out: bool, via: str) -> bool:
        """Record the subject's choice (a no-op when it is already theirs); returns it.

        Raises:
            PrivacyBusyError: lost every race for the stream.
        """
        event_type = SubjectOptedOut if opt_out else SubjectOptedIn

        def decide(history: list[DomainEvent]) -> list[DomainEvent]:
            if opted_out(history) == opt_out and history:
                return []
            return [event_type(requested_by=command.subject, via=via, at=self._clock())]

        await self._append(command, subject, decide, suffix="privacy")
        return opt_out

    async def refuse(self, command: Command, channel: str, *, subject: str | None = None) -> None:
        """Record that a subject's data (the command's, unless named) was kept from a third party."""

        def decide(_history: list[DomainEvent]) -> list[DomainEvent]:
            return [SharingRefused(channel=channel, requested_by=command.subject, at=self._clock())]

        await self._append(command, subject or command.subject, decide, suffix="refused")

    async def check_sharing(
        self, command: Command, recipient: DataRecipient, channel: str, *, subject: str | None = None
    ) -> None:
        """Refuse (and record) sending a subject's data (the command's, unless named) to this
        recipient if they opted out.

        Raises:
            ToolExecutionError: code "opted_out".
        """
        owner = subject or command.subject
        if may_share(await self.opted_out(command.tenant, owner), recipient):
            return
        await self.refuse(command, channel, subject=owner)
        raise ToolExecutionError(
            "opted_out",
            "this tool sends data to a third party and you opted out of the sale or sharing of your "
            "personal information (privacy_opt_out with opt_out false opts back in)",
        )

    async def _append(
        self,
        command: Command,
        subject: str,
        decide: Callable[[list[DomainEvent]], list[DomainEvent]],
        *,
        suffix: str,
    ) -> None:
        stream_id = privacy_stream(command.tenant, subject)
        key = command_key(command, f"{command.command_id}:{suffix}")
        metadata = {**command_metadata(command), "subject": subject, "requested_by": command.subject}
        for _ in range(self._max_attempts):
            stored = await self._store.read_stream(stream_id)
            events = decide([to_domain(event) for event in stored])
            if not events:
                return
            records = [NewEvent(*_record(event), metadata=metadata) for event in events]
            try:
                result = await self._store.append(stream_id, len(stored), records, command=key)
            except ConcurrencyError:
                continue
            if not result.duplicate:
                await self._on_appended(result.events)
            return
        raise PrivacyBusyError(f"the privacy stream of a subject of {command.tenant} kept changing")

    def runners(self) -> dict[str, Callable[[ToolInvocation], Awaitable[ToolOutcome]]]:
        """The runners of the opt-out tools (the subject's own, and the admin's)."""

        async def own(call: ToolInvocation) -> ToolOutcome:
            command = call.command
            choice = bool(command.arguments.get("opt_out", True))
            await self.record(command, command.subject, choice, via="tool")
            return structured_outcome({"subject": command.subject, "opted_out": choice})

        async def on_behalf(call: ToolInvocation) -> ToolOutcome:
            command = call.command
            subject, choice = str(command.arguments["subject"]), bool(command.arguments.get("opt_out", True))
            await self.record(command, subject, choice, via="admin")
            return structured_outcome({"subject": subject, "opted_out": choice})

        return {OPT_OUT_TOOL: own, ADMIN_OPT_OUT_TOOL: on_behalf}


def _record(event: DomainEvent) -> tuple[str, dict[str, object], int]:
    event_type, version, data = to_record(event)
    return event_type, data, version
