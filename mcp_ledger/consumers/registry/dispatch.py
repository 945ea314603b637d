"""How a registry-writing tool table dispatches: one runner per tool name, the registry
scope a call names, and the writer's refusals as the tool's recorded failure.

Shared by the registry's tools (consumers/registry/tools.py) and the upstream-server tools
(consumers/upstreams/tools.py), which write the same registry streams through the same
RegistryWriter. It does not parse arguments or decide anything: each table's runners do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from mcp_ledger.consumers.registry.writer import RegistryBusyError
from mcp_ledger.consumers.tools import ToolExecutionError, ToolInvocation, ToolRunner
from mcp_ledger.domain.registry.openapi import OpenApiError
from mcp_ledger.domain.registry.registration import RegistrationError


class ToolTable:
    """A family of worker tools whose runners are the methods named like the tools."""

    TOOLS: ClassVar[tuple[str, ...]] = ()

    def runners(self) -> dict[str, ToolRunner]:
        """Tool name -> its runner."""
        return {name: getattr(self, name) for name in self.TOOLS}


def registry_scope(call: ToolInvocation) -> str | None:
    """The registry a call writes: None for the tenant's, else the call's own session.

    Raises:
        ToolExecutionError: scope 'session' without a session.
    """
    if call.command.arguments.get("scope", "tenant") == "tenant":
        return None
    if call.command.session_id is None:
        raise ToolExecutionError("no_session", "scope 'session' needs a session (Ledger-Session header)")
    return call.command.session_id


@contextmanager
def refusals() -> Iterator[None]:
    """The writer's and the decisions' refusals as the tool's failure, naming every problem.

    Raises:
        ToolExecutionError: registration_refused, or registry_busy after the writer's retries.
    """
    try:
        yield
    except (RegistrationError, OpenApiError) as error:
        raise ToolExecutionError("registration_refused", str(error)) from None
    except RegistryBusyError as error:
        raise ToolExecutionError("registry_busy", str(error)) from None
