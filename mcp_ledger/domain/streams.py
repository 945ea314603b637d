"""Stream and key naming: the one place that says how ids become stream ids and derived ids.

Tenant comes first in every name so that nothing of one tenant can be addressed through
another's names. An id the caller chooses (a plan id) names something only inside the
caller's own namespace: the stream also names its owner. Ids derived for records (a plan
task's command, a blob) include something of the run that nobody can guess or choose.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

SUBJECT_TAG_CHARS = 32
"""Hex characters of a subject tag: 128 bits of sha256."""


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


def subject_tag(subject: str) -> str:
    """A subject's name inside stream ids and keys: fixed length, no separators (subjects are
    free text up to 256 characters). Not a secret: subject ids are in the clear in metadata."""
    return hashlib.sha256(subject.encode()).hexdigest()[:SUBJECT_TAG_CHARS]


def plan_stream(tenant: str, subject: str, plan_id: str) -> str:
    """The event stream of a subject's plan: its acceptance, every task attempt and its end.
    The plan id is the caller's label, unique only among that subject's plans."""
    return f"tenant:{tenant}:plan:{subject_tag(subject)}:{plan_id}"


def legacy_plan_stream(tenant: str, plan_id: str) -> str:
    """Where a plan accepted before plan ids were scoped by subject lives (one per tenant)."""
    return f"tenant:{tenant}:plan:{plan_id}"


def plan_view_id(subject: str, plan_id: str) -> str:
    """The key of a plan's view within its tenant: the owner and the plan id, as in its stream."""
    return f"{subject_tag(subject)}:{plan_id}"


@dataclass(frozen=True, slots=True)
class PlanStreamName:
    """What a plan stream id says: the tenant, the owner's tag (None on a legacy stream,
    whose owner only its events name) and the plan id."""

    tenant: str
    owner_tag: str | None
    plan_id: str


def parse_plan_stream(stream_id: str) -> PlanStreamName | None:
    """The parts of a plan stream id (scoped or legacy), None for any other stream."""
    parts = stream_id.split(":")
    if len(parts) < 4 or parts[0] != "tenant" or parts[2] != "plan":
        return None
    if len(parts) == 5 and len(parts[3]) == SUBJECT_TAG_CHARS:
        return PlanStreamName(parts[1], parts[3], parts[4])
    if len(parts) == 4:
        return PlanStreamName(parts[1], None, parts[3])
    return None


def plan_task_command_id(run_id: str, task_number: int, attempt: str) -> str:
    """The command id of one attempt of a plan task (`attempt` a number or "compensate").

    `run_id` is the accepting command's id: fresh and random per accepted plan, made by the
    API and never by the caller, so an identical plan of anyone else (or of the same caller,
    accepted again) never derives the same id. Stable across resumes of the same run, so a
    resumed attempt is recognised as the one already recorded. The task is named by its
    position in the frozen plan, never by its id: task ids are the caller's text, sealed in
    the plan's events, and command ids are stored in the clear.
    """
    return f"plan-{run_id}-t{task_number}-{attempt}"


TASK_ID_BYTES = 24
"""Random bytes of a task id (192 bits, CSPRNG): made by the gateway, never by the caller."""


def new_task_id() -> str:
    """An unguessable MCP task id."""
    return secrets.token_urlsafe(TASK_ID_BYTES)


def task_stream(tenant: str, subject: str, task_id: str) -> str:
    """The event stream of a subject's MCP task: even a leaked task id names nothing under
    another subject, whose stream ids carry their own tag."""
    return f"tenant:{tenant}:task:{subject_tag(subject)}:{task_id}"


TASK_KEY_PREFIX = "mcp-task:"
"""Key-store owners of MCP tasks' own data keys start with this: never a subject's."""


def task_key_owner(subject: str, task_id: str) -> str:
    """The key-store owner of one task's own data key (its content is sealed with it inside
    the subject's seal, so destroying it purges that task alone)."""
    return f"{TASK_KEY_PREFIX}{subject_tag(subject)}:{task_id}"


def parse_task_stream(stream_id: str) -> tuple[str, str, str] | None:
    """(tenant, owner tag, task id) of a task stream id, None for any other stream."""
    parts = stream_id.split(":")
    if len(parts) != 5 or parts[0] != "tenant" or parts[2] != "task":
        return None
    return parts[1], parts[3], parts[4]


def blob_id(tenant: str, subject: str, command_id: str) -> str:
    """The id of the blob a command stores: the same for a re-run of that command (so a retry
    never leaves a second copy), different for anyone else's command of the same id."""
    return hashlib.sha256(f"{tenant}\0{subject}\0{command_id}".encode()).hexdigest()[:32]
