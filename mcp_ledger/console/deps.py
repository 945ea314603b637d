"""The parts every console page reads and sends through, given by wiring."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp_ledger.console.ports import ConsoleReads, UpstreamSource
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.audit import AuditReader
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.producers.ports import Message
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.sessions.ports import SessionViewStore


class Changes:
    """Wakes live pages when something was recorded: a broadcast subscriber of ledger.events.

    Carries no data (a woken page reads its view again, tenant-scoped like any read), so one
    tenant's events can only make another tenant's page look again, never show anything.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    async def on_event(self, message: Message) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> None:
        """Return when the next event arrives, or after `seconds`."""
        event = self._event
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return


@dataclass
class ConsoleDeps:
    gateway: CommandGateway
    compliance_topic: str
    audit: AuditReader
    sessions: SessionViewStore
    plans: PlanViewStore
    registry: RegistryViewStore
    builtins: Mapping[str, ToolSpec]
    reads: ConsoleReads
    metrics: LedgerMetrics
    changes: Changes = field(default_factory=Changes)
    upstreams: UpstreamSource | None = None
    """Federation's hook: set it and the Registry and Overview pages list upstream servers."""
