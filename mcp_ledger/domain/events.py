"""Domain events and their mapping to stored records (type name, schema version, JSON data).

Each event is a frozen pydantic model named in the past tense. `to_record` and `from_record`
are the mapper between the domain and the event store; `UPCASTERS` lifts older schema
versions of a stored event to the current one before it is parsed. Every field is sealed
unless domain/personal.NOT_PERSONAL names it; the encryption happens outside the domain
(crypto/), on the records this module produces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mcp_ledger.domain.personal import Personal

JSON = dict[str, Any]


class DomainEvent(BaseModel):
    """Base of all events: frozen, with a schema version per type."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: ClassVar[int] = 1
    terminal: ClassVar[bool] = False
    """True for the event that ends a command: the API answers the agent when it arrives."""


class SessionOpened(DomainEvent):
    session_id: str
    tenant: str
    subject: str
    opened_at: float


class ToolCalled(DomainEvent):
    command_id: str
    tool_name: str
    arguments: Personal[JSON]
    issued_at: float | None = None
    """When the agent asked; None in events recorded before it was kept."""


class SessionClosed(DomainEvent):
    """The session ended (the client deleted it); later commands naming it are refused."""

    reason: str


class SessionNoteWritten(DomainEvent):
    key: Personal[str]
    """Chosen by the caller, so as personal as the value."""
    value: Personal[Any]


class SessionNoteDeleted(DomainEvent):
    key: Personal[str]


class ToolSucceeded(DomainEvent):
    terminal: ClassVar[bool] = True
    command_id: str
    tool_name: str
    content: Personal[list[JSON]]
    structured: Personal[JSON | None] = None
    is_error: bool = False
    """The tool answered with an error result (an upstream MCP tool's isError): it ran."""


class ToolFailed(DomainEvent):
    terminal: ClassVar[bool] = True
    command_id: str
    tool_name: str
    error_code: str
    message: Personal[str]
    """May quote the arguments (schema errors do), so it is sealed like them."""


class ToolCallDenied(DomainEvent):
    """The caller's roles do not allow the tool: recorded for auditors, the tool never ran."""

    terminal: ClassVar[bool] = True
    command_id: str
    tool_name: str
    roles: list[str]
    reason: Personal[str]
    """A sentence naming the tool and the roles it needs; sealed like every message."""


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.__name__: cls
    for cls in (
        SessionOpened,
        SessionClosed,
        ToolCalled,
        SessionNoteWritten,
        SessionNoteDeleted,
        ToolSucceeded,
        ToolFailed,
        ToolCallDenied,
    )
}

Upcaster = Callable[[JSON], JSON]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(event type, from version) -> function returning the data at from version + 1."""


class UnknownEventError(ValueError):
    """A stored record names an event type this code does not know."""


def to_record(event: DomainEvent) -> tuple[str, int, JSON]:
    """(event type, schema version, JSON data) for storing an event."""
    return type(event).__name__, type(event).schema_version, event.model_dump(mode="json")


def from_record(event_type: str, schema_version: int, data: JSON) -> DomainEvent:
    """Rebuild a domain event from a stored record, upcasting older versions first.

    Raises:
        UnknownEventError: the type is unknown or no upcaster covers its version.
    """
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventError(f"unknown event type {event_type!r}")
    version = schema_version
    while version < cls.schema_version:
        upcast = UPCASTERS.get((event_type, version))
        if upcast is None:
            raise UnknownEventError(f"no upcaster for {event_type} v{version}")
        data = upcast(data)
        version += 1
    return cls.model_validate(data)


def is_terminal(event_type: str) -> bool:
    """Whether events of this type end a command."""
    cls = EVENT_TYPES.get(event_type)
    return cls is not None and cls.terminal
