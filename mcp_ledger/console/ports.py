"""What the console reads beyond the API's own read models, as ports wiring fills.

The console is an entry point like the MCP API: it never imports the event store or the
workers. The subject export, the opt-out state and the retention dry run are answered by
adapters in wiring (over the same export, privacy and retention code as the CLI); upstream
servers and pending tool-definition approvals by whatever the federation work provides
(`UpstreamSource`; without one the Registry page says none are known).
"""

from __future__ import annotations

from typing import Any, Protocol

from mcp_ledger.mcp_api.auth.identity import Identity


class ConsoleReads(Protocol):
    async def export(self, tenant: str, subject: str) -> dict[str, Any]:
        """The subject's export bundle (their opened history and session state)."""
        ...

    async def opted_out(self, tenant: str, subject: str) -> bool:
        """Whether the subject opted out of the sale or sharing of their data."""
        ...

    async def retention_due(self, tenant: str) -> list[dict[str, Any]]:
        """A dry run of `retention run` for one tenant: who would be erased and why."""
        ...


class UpstreamSource(Protocol):
    """The extension point for upstream MCP servers (federation): what the registry knows."""

    async def servers(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's upstream servers: name, url, health, pinned version, tool count."""
        ...

    async def pending_approvals(self, tenant: str) -> list[dict[str, Any]]:
        """Changed upstream tool definitions waiting for an admin's decision: each with an
        `id` (unguessable, or scoped to the tenant), `server`, `tool`, `hash` (the definition's
        sha256, which a decision names) and `change`."""
        ...

    async def decide(
        self, identity: Identity, approval_id: str, approve: bool, hashes: dict[str, str]
    ) -> str:
        """Record an admin's approval or rejection of the pending definitions `hashes` names
        (tool -> the sha256 the page showed) as a command through the normal path, within
        `identity`'s tenant; a sentence saying what happened."""
        ...
