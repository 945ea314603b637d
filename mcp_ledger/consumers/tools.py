"""Running tools inside a worker: the runner signature and the built-in tools.

A runner gets the command and a read-only view of its session and returns content for the
agent plus the domain events the tool caused (effects). Runners never append or publish:
the command handler appends the call, its effects and its outcome in one transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent, SessionNoteDeleted, SessionNoteWritten
from mcp_ledger.domain.session.aggregate import Session

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolInvocation:
    command: CallTool
    session: Session


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    content: list[JSON]
    structured: JSON | None = None
    effects: tuple[DomainEvent, ...] = field(default_factory=tuple)
    is_error: bool = False


class ToolExecutionError(Exception):
    """A tool failed in a way the agent should hear about (recorded as ToolFailed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ToolRunner = Callable[[ToolInvocation], Awaitable[ToolOutcome]]


def _text(text: str) -> JSON:
    return {"type": "text", "text": text}


def structured_outcome(structured: JSON, effects: tuple[DomainEvent, ...] = ()) -> ToolOutcome:
    """An outcome whose text content mirrors its structured content, as MCP recommends."""
    return ToolOutcome([_text(json.dumps(structured, ensure_ascii=False))], structured, effects)


async def echo(call: ToolInvocation) -> ToolOutcome:
    text = str(call.command.arguments["text"])
    return ToolOutcome([_text(text)], {"text": text})


async def session_open(call: ToolInvocation) -> ToolOutcome:
    return structured_outcome({"session_id": call.command.session_id})


async def note_set(call: ToolInvocation) -> ToolOutcome:
    key, value = call.command.arguments["key"], call.command.arguments["value"]
    return structured_outcome({"key": key}, (SessionNoteWritten(key=key, value=value),))


async def note_get(call: ToolInvocation) -> ToolOutcome:
    key = call.command.arguments["key"]
    if key not in call.session.notes:
        return structured_outcome({"key": key, "found": False})
    return structured_outcome({"key": key, "found": True, "value": call.session.notes[key]})


async def note_delete(call: ToolInvocation) -> ToolOutcome:
    key = call.command.arguments["key"]
    if key not in call.session.notes:
        return structured_outcome({"key": key, "deleted": False})
    return structured_outcome({"key": key, "deleted": True}, (SessionNoteDeleted(key=key),))


async def note_list(call: ToolInvocation) -> ToolOutcome:
    return structured_outcome({"notes": dict(call.session.notes)})


async def sleep(call: ToolInvocation) -> ToolOutcome:
    ms = int(call.command.arguments["ms"])
    await asyncio.sleep(ms / 1000)
    return structured_outcome({"slept_ms": ms})


BUILTIN_RUNNERS: dict[str, ToolRunner] = {
    "echo": echo,
    "session_open": session_open,
    "note_set": note_set,
    "note_get": note_get,
    "note_delete": note_delete,
    "note_list": note_list,
    "sleep": sleep,
}
