"""The scope of one command: its correlation fields bound for logging, and its span.

Used by the API gateway (log fields only: the SDK's `tools/call` span is already current)
and by the workers' command handler (a `handle KIND` span around decide, run, append).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from mcp_ledger.domain.commands import Command
from mcp_ledger.observability.logs import log_context
from mcp_ledger.observability.tracing import span


def command_log_context(command: Command) -> AbstractContextManager[None]:
    """Bind the command's id, correlation id and tenant for the block."""
    return log_context(
        command_id=command.command_id,
        correlation_id=command.correlation_id or command.command_id,
        tenant=command.tenant,
    )


@contextmanager
def command_scope(command: Command) -> Iterator[None]:
    """Log fields and a `handle KIND` span for a worker handling the command."""
    attributes = {"ledger.command_id": command.command_id, "ledger.tenant": command.tenant}
    tool_name = getattr(command, "tool_name", None)
    if isinstance(tool_name, str):
        attributes["gen_ai.tool.name"] = tool_name
    kind = str(getattr(command, "kind", type(command).__name__))
    with command_log_context(command), span(f"handle {kind}", attributes=attributes):
        yield
