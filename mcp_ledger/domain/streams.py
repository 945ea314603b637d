"""Stream and key naming: the one place that says how ids become stream ids.

Tenant comes first in every name so that nothing of one tenant can be addressed through
another's names.
"""

from __future__ import annotations


def session_stream(tenant: str, session_id: str) -> str:
    """The event stream of a session."""
    return f"tenant:{tenant}:session:{session_id}"


def call_stream(tenant: str, command_id: str) -> str:
    """The stream of a call made outside any session (or refused before reaching one)."""
    return f"tenant:{tenant}:call:{command_id}"


def parse_session_stream(stream_id: str) -> tuple[str, str] | None:
    """(tenant, session id) of a session stream id, None for any other stream."""
    parts = stream_id.split(":")
    if len(parts) != 4 or parts[0] != "tenant" or parts[2] != "session":
        return None
    return parts[1], parts[3]


def registry_stream(tenant: str, session_id: str | None = None) -> str:
    """The tool registry stream of a tenant, or of one of its sessions (session-scoped tools)."""
    if session_id is None:
        return f"tenant:{tenant}:registry"
    return f"tenant:{tenant}:registry:session:{session_id}"


def parse_registry_stream(stream_id: str) -> tuple[str, str | None] | None:
    """(tenant, session id or None for the tenant-wide registry), None for any other stream."""
    parts = stream_id.split(":")
    if len(parts) == 3 and parts[0] == "tenant" and parts[2] == "registry":
        return parts[1], None
    if len(parts) == 5 and parts[0] == "tenant" and parts[2] == "registry" and parts[3] == "session":
        return parts[1], parts[4]
    return None


def erasure_stream(tenant: str, erasure_id: str) -> str:
    """The stream recording one erasure of a subject (its id is the erase command's id)."""
    return f"tenant:{tenant}:erasure:{erasure_id}"


def plan_stream(tenant: str, plan_id: str) -> str:
    """The event stream of a plan: its acceptance, every task attempt and its end."""
    return f"tenant:{tenant}:plan:{plan_id}"


def parse_plan_stream(stream_id: str) -> tuple[str, str] | None:
    """(tenant, plan id) of a plan stream id, None for any other stream."""
    parts = stream_id.split(":")
    if len(parts) != 4 or parts[0] != "tenant" or parts[2] != "plan":
        return None
    return parts[1], parts[3]
