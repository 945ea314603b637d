"""Commands: what an agent asks the gateway to do, as they travel on ledger.commands.

A command carries everything a worker needs to decide (who, which session, what), so that a
redelivered command decides the same way. Ids are made at the edge, never by a worker.
Every field travels sealed on ledger.commands unless domain/personal.NOT_PERSONAL names it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.personal import Personal
from mcp_ledger.domain.streams import call_stream, plan_stream, session_stream

# Names that end up inside stream ids and Redis keys: no separators, no spaces.
NAME_PATTERN = r"^[A-Za-z0-9._-]+$"


def new_command_id() -> str:
    """A fresh, unique, unguessable command id (uuid4: 122 random bits from the OS CSPRNG).
    Callers never choose one; ids derived from it (streams.plan_task_command_id) inherit that."""
    return uuid.uuid4().hex


def new_session_id() -> str:
    """An unpredictable session id (CSPRNG, 128 bits)."""
    return secrets.token_urlsafe(16)


class Command(BaseModel):
    """Fields every command has: identity of the caller and the command itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str = Field(default_factory=new_command_id)
    correlation_id: str = ""
    tenant: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    subject: str = Field(min_length=1, max_length=256)
    session_id: str | None = Field(default=None, min_length=8, max_length=128, pattern=NAME_PATTERN)
    issued_at: float = Field(default_factory=time.time)
    roles: tuple[str, ...] = ()
    """The caller's roles from the validated token; the worker checks them per tool."""

    @property
    def stream_id(self) -> str:
        """The stream this command writes to: its session's, or its own when it has none."""
        if self.session_id is None:
            return call_stream(self.tenant, self.command_id)
        return session_stream(self.tenant, self.session_id)

    @property
    def partition_key(self) -> str:
        """The bus key: one session's commands are handled in order."""
        return self.session_id or self.command_id


class CallTool(Command):
    """Run one tool with arguments, within the caller's session if it names one."""

    kind: Literal["CallTool"] = "CallTool"
    tool_name: str = Field(min_length=1, max_length=128)
    arguments: Personal[dict[str, Any]] = Field(default_factory=dict)
    task_id: str | None = Field(default=None, max_length=64, pattern=NAME_PATTERN)
    """The MCP task this call runs for (set by the gateway): its worker stops the tool when
    the owner cancels that task (consumers/tasks/cancellation.py)."""
    client_capabilities: tuple[str, ...] | None = None
    """Which of sampling, elicitation and roots the agent declared for this call (an upstream
    is offered only those); None when not known (a 2025-11-25 session): all are offered."""
    input_responses: Personal[dict[str, Any] | None] = None
    """inputResponses a 2026-07-28 agent sent with its first request (no requestState): an
    upstream is given them with the call, under the agent's keys (SEP-2322: it ignores any it
    did not ask for)."""


class PlanCommand(Command):
    """A command about one of the caller's plans: the plan id is a label in the caller's own
    namespace, so the stream (and the bus key) is the plan's under its owner."""

    plan_id: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)

    @property
    def stream_id(self) -> str:
        return plan_stream(self.tenant, self.subject, self.plan_id)

    @property
    def partition_key(self) -> str:
        return self.stream_id


class AcceptPlan(PlanCommand):
    """Freeze a plan validated at the edge (the worker validates it again) and maybe start it."""

    kind: Literal["AcceptPlan"] = "AcceptPlan"
    plan: Personal[dict[str, Any]]
    plan_hash: Personal[str]
    """A digest of the plan: anyone holding it can confirm a guessed plan, so it is sealed."""
    execute: bool = False


class ExecutePlan(PlanCommand):
    kind: Literal["ExecutePlan"] = "ExecutePlan"


class CancelPlan(PlanCommand):
    kind: Literal["CancelPlan"] = "CancelPlan"
    reason: Personal[str] = Field("", max_length=1000)


AnyCommand = Annotated[CallTool | AcceptPlan | ExecutePlan | CancelPlan, Field(discriminator="kind")]


class CommandEnvelope(BaseModel):
    """The wire form on ledger.commands; a union so new command kinds slot in."""

    command: AnyCommand
