"""Who may call which tool: roles from the caller's token against a tool's requirements.

A tool can ask for a minimum role on the ladder (the OpenAPI `x-mcp-tool` security
`minimum_role`) and/or name the roles allowed to call it (registry roles). Roles that are
not on the ladder rank below every rung, so they only help through `allowed_roles`.
This module decides; it does not know where roles come from (mcp_api) or who records a
denial (consumers).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

ROLE_LADDER: tuple[str, ...] = ("viewer", "data-analyst", "operator", "admin")
"""Lowest to highest; a role satisfies every minimum_role at or below its rung."""


def rank(role: str, ladder: Sequence[str] = ROLE_LADDER) -> int:
    """The rung of a role, -1 when it is not on the ladder."""
    try:
        return ladder.index(role)
    except ValueError:
        return -1


def access_problem(
    caller_roles: Collection[str],
    minimum_role: str | None,
    allowed_roles: Collection[str],
    ladder: Sequence[str] = ROLE_LADDER,
) -> str | None:
    """None when the caller may call the tool, else why not (safe to show the caller)."""
    if minimum_role is not None:
        needed = rank(minimum_role, ladder)
        best = max((rank(role, ladder) for role in caller_roles), default=-1)
        if needed < 0 or best < needed:
            return f"this tool needs the role {minimum_role!r} or higher"
    if allowed_roles and not set(caller_roles) & set(allowed_roles):
        return "this tool needs one of the roles " + ", ".join(sorted(allowed_roles))
    return None
