"""What a worker decides for a CallTool command, before and after the tool runs.

`admit` refuses a command that may not run (unknown tool, missing or foreign session);
`outcome_events` turns a tool's result into the events appended in one go with the call.
Both are pure, so a redelivered command decides the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import (
    DomainEvent,
    SessionOpened,
    ToolCallDenied,
    ToolCalled,
    ToolFailed,
    ToolSucceeded,
)
from mcp_ledger.domain.session.aggregate import Session
from mcp_ledger.domain.tools import ToolSpec

FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a command may not run. `in_session` says whether the refusal belongs in the
    session's own stream (it exists and is the caller's) or in the call's stream."""

    error_code: str
    message: str
    in_session: bool


def admit(
    command: CallTool, spec: ToolSpec | None, session: Session, session_ttl: float | None = None
) -> Refusal | None:
    """None when the command may run, else the refusal. `session_ttl` is the idle limit in seconds."""
    if spec is None:
        return Refusal("unknown_tool", f"unknown tool {command.tool_name!r}", in_session=False)
    denied = access_problem(command.roles, spec.minimum_role, spec.allowed_roles)
    if denied is not None:
        return Refusal(FORBIDDEN, denied, in_session=False)
    if spec.opens_session:
        if command.session_id is None or session.exists:
            return Refusal("session_conflict", "session_open needs a fresh session id", in_session=False)
        return None
    if command.session_id is None:
        if spec.needs_session:
            return Refusal(
                "no_session",
                f"{spec.name} needs a session: call session_open and send its session_id "
                "in the Ledger-Session header",
                in_session=False,
            )
        return None
    if not session.is_owned_by(command.tenant, command.subject) or session.closed:
        # Foreign, missing and closed sessions get the same answer: existence is not disclosed.
        return Refusal("unknown_session", "unknown session", in_session=False)
    if session.is_expired(command.issued_at, session_ttl):
        return Refusal(
            "session_expired", "the session expired after being idle; open a new one", in_session=False
        )
    return None


def refusal_events(command: CallTool, refusal: Refusal) -> list[DomainEvent]:
    """The events recording a refused command; a denial never records the arguments."""
    if refusal.error_code == FORBIDDEN:
        return [
            ToolCallDenied(
                command_id=command.command_id,
                tool_name=command.tool_name,
                roles=list(command.roles),
                reason=refusal.message,
            )
        ]
    return [
        _called(command),
        ToolFailed(
            command_id=command.command_id,
            tool_name=command.tool_name,
            error_code=refusal.error_code,
            message=refusal.message,
        ),
    ]


def opening_events(command: CallTool) -> list[DomainEvent]:
    """The effect of session_open: the session, owned by the caller."""
    assert command.session_id is not None
    return [
        SessionOpened(
            session_id=command.session_id,
            tenant=command.tenant,
            subject=command.subject,
            opened_at=command.issued_at,
        )
    ]


def outcome_events(
    command: CallTool,
    effects: Sequence[DomainEvent],
    content: list[dict[str, Any]],
    structured: dict[str, Any] | None,
    error: tuple[str, str] | None = None,
    *,
    is_error: bool = False,
) -> list[DomainEvent]:
    """ToolCalled, the tool's effects, then the terminal event (success or failure)."""
    called = _called(command)
    if error is not None:
        code, message = error
        failed = ToolFailed(
            command_id=command.command_id, tool_name=command.tool_name, error_code=code, message=message
        )
        return [called, failed]
    done = ToolSucceeded(
        command_id=command.command_id,
        tool_name=command.tool_name,
        content=content,
        structured=structured,
        is_error=is_error,
    )
    return [called, *effects, done]


def _called(command: CallTool) -> ToolCalled:
    return ToolCalled(
        command_id=command.command_id,
        tool_name=command.tool_name,
        arguments=command.arguments,
        issued_at=command.issued_at,
    )
