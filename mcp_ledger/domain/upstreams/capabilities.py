"""The client capabilities an upstream may need of the agent behind a call (the back channel).

An agent's call carries which of them it declared (CallTool.client_capabilities); the worker
offers the upstream only those, and an upstream refusing for a missing one (-32021,
MissingRequiredClientCapability) is recorded as `upstream_missing_capability` with the names in
its message, which the API turns back into -32021 for the agent.
"""

from __future__ import annotations

import re

BACK_CHANNEL = ("sampling", "elicitation", "roots")
MISSING_CAPABILITY = "upstream_missing_capability"
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
_REQUIRED = re.compile(r"\(requires the client capabilities: ([a-z, ]+)\)$")


def declared(capabilities: object) -> tuple[str, ...]:
    """The back-channel capabilities a ClientCapabilities (model or dict) declares."""
    if capabilities is None:
        return ()
    if hasattr(capabilities, "model_dump"):
        capabilities = capabilities.model_dump(exclude_none=True)
    if not isinstance(capabilities, dict):
        return ()
    return tuple(name for name in BACK_CHANNEL if capabilities.get(name) is not None)


def missing_message(reason: str, required: object) -> str:
    """The recorded message of an upstream's -32021, naming what it requires."""
    names = sorted(required) if isinstance(required, dict) else []
    known = [name for name in names if name in BACK_CHANNEL] or ["sampling"]
    return f"{reason} (requires the client capabilities: {', '.join(known)})"


def required_of(message: str) -> dict[str, dict[str, object]]:
    """The requiredCapabilities (a ClientCapabilities object) named in such a message."""
    found = _REQUIRED.search(message)
    names = found.group(1).split(", ") if found else ["sampling"]
    return {name: {} for name in names if name in BACK_CHANNEL}
