"""What the agent declared it can answer (sampling, elicitation, roots), and -32021 when an
upstream needed one it did not.

A 2026-07-28 request declares its client capabilities in its own `_meta`; the command carries
the back-channel ones, so the worker offers the upstream exactly those. A 2025-11-25 session's
declaration is not kept by the stateless layers, so its calls offer all of them (an agent that
cannot answer says so, and the upstream hears its error). An upstream's
MissingRequiredClientCapability, recorded as `upstream_missing_capability`, reaches the agent
as the same JSON-RPC error (-32021, HTTP 400 on 2026-07-28) with the required capabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_ledger.domain.upstreams.capabilities import (
    MISSING_CAPABILITY,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    declared,
    required_of,
)

MODERN_PREFIX = "2026-"


def agent_capabilities(ctx: ServerRequestContext[Any]) -> tuple[str, ...] | None:
    """The back-channel capabilities this request's agent declared; None when not known."""
    if not str(ctx.protocol_version).startswith(MODERN_PREFIX):
        return None
    return declared(ctx.session.client_capabilities)


def refuse_missing_capability(event: Mapping[str, Any]) -> None:
    """Raise the agent's -32021 if the terminal event says the upstream needed a capability.

    Raises:
        MCPError: MissingRequiredClientCapability, with `requiredCapabilities`.
    """
    data = event.get("data") or {}
    if event.get("event_type") != "ToolFailed" or data.get("error_code") != MISSING_CAPABILITY:
        return
    message = str(data.get("message", ""))
    raise MCPError(
        MISSING_REQUIRED_CLIENT_CAPABILITY, message, {"requiredCapabilities": required_of(message)}
    )
