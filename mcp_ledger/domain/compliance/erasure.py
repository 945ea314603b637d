"""Compliance commands and events: erasure of a subject (crypto-shredding) and its record.

An erasure is recorded in its own stream: ErasureStarted, SubjectKeysDestroyed, then the
terminal ErasureCompleted with what was erased and how much. None of these events holds
personal data (no arguments, no free text), so they stay readable after the erasure and
never need the erased subject's key. Registering the event types
here keeps events.py free of compliance concerns; the package's __init__ imports this module.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from mcp_ledger.domain.commands import Command
from mcp_ledger.domain.events import EVENT_TYPES, DomainEvent
from mcp_ledger.domain.streams import erasure_stream


class EraseSubject(Command):
    """Erase everything personal of `subject` in `tenant` (right to erasure, CCPA deletion)."""

    kind: Literal["EraseSubject"] = "EraseSubject"
    requested_by: str = Field(min_length=1, max_length=256)
    """Who asked: an admin's subject, or the name of a compliance job."""

    @property
    def stream_id(self) -> str:
        return erasure_stream(self.tenant, self.command_id)

    @property
    def partition_key(self) -> str:
        # One subject's erasures are handled in order, by one worker at a time.
        return f"{self.tenant}:{self.subject}"


class ComplianceEnvelope(BaseModel):
    """The wire form on ledger.compliance."""

    command: EraseSubject


class ErasureStarted(DomainEvent):
    erasure_id: str
    requested_by: str
    started_at: float


class SubjectKeysDestroyed(DomainEvent):
    erasure_id: str
    keys_destroyed: int


class ErasureCompleted(DomainEvent):
    """PII-free record of an erasure: what was erased, how much, when."""

    terminal: ClassVar[bool] = True
    erasure_id: str
    requested_by: str
    keys_destroyed: int
    purged: dict[str, int]
    """Items removed per kind of subject data (session views, sessions, pointers, blobs…)."""
    started_at: float
    completed_at: float


COMPLIANCE_EVENTS: tuple[type[DomainEvent], ...] = (
    ErasureStarted,
    SubjectKeysDestroyed,
    ErasureCompleted,
)
EVENT_TYPES.update({cls.__name__: cls for cls in COMPLIANCE_EVENTS})
