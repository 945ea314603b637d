"""Sealing the personal fields of events and commands, as they are stored and published.

Owns which fields are sealed (the domain's Personal marks), the scope each is bound to (an
event's stream and type; a command's id), and turning fields of erased subjects into
placeholders. Events without personal fields never touch the key store, so recording an
erasure never recreates the erased subject's key. Does not append or publish anything.
"""

from __future__ import annotations

from typing import Any, TypeVar

from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sealing import FieldSealer, erased_value, is_sealed
from mcp_ledger.domain.commands import Command
from mcp_ledger.domain.events import EVENT_TYPES
from mcp_ledger.domain.personal import personal_fields

JSON = dict[str, Any]
C = TypeVar("C", bound=Command)


class MissingSubjectError(ValueError):
    """An event with personal fields has no tenant and subject to seal them for."""


def _event_scope(stream_id: str, event_type: str) -> str:
    return f"event|{stream_id}|{event_type}"


def _command_scope(command_id: str) -> str:
    return f"command|{command_id}"


def _owner(metadata: JSON) -> tuple[str, str] | None:
    tenant, subject = metadata.get("tenant"), metadata.get("subject")
    if isinstance(tenant, str) and isinstance(subject, str):
        return tenant, subject
    return None


def unsealed_as_erased(event_type: str, data: JSON) -> JSON:
    """A stored event's data with every sealed field replaced by its erased placeholder, for
    read models that must never hold the personal fields (no key is looked up)."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        return data
    return {name: erased_value(cls, name) if is_sealed(value) else value for name, value in data.items()}


class RecordSealer:
    """Seals before storing or publishing; opens after loading or receiving."""

    def __init__(self, keys: KeyStore) -> None:
        self._fields = FieldSealer(keys)

    @property
    def keys(self) -> KeyStore:
        return self._fields.keys

    async def seal_event(self, event_type: str, data: JSON, metadata: JSON, stream_id: str) -> JSON:
        """An event's data with its personal fields sealed.

        Raises:
            MissingSubjectError: it has personal fields but no tenant/subject in metadata.
        """
        cls = EVENT_TYPES.get(event_type)
        names = personal_fields(cls) if cls is not None else frozenset()
        if not names & set(data):
            return data
        owner = _owner(metadata)
        if owner is None:
            raise MissingSubjectError(f"{event_type} has personal fields but no tenant and subject")
        return await self._fields.seal(*owner, _event_scope(stream_id, event_type), data, names)

    async def open_event(self, event_type: str, data: JSON, metadata: JSON, stream_id: str) -> JSON:
        """An event's data with sealed fields opened; an erased subject's read as placeholders.

        Raises:
            DecryptionError: a sealed value was altered or moved.
        """
        owner = _owner(metadata)
        if owner is None:
            return data
        opened, gone = await self._fields.open(*owner, _event_scope(stream_id, event_type), data)
        cls = EVENT_TYPES.get(event_type)
        for name in gone:
            opened[name] = erased_value(cls, name) if cls is not None else None
        return opened

    async def open_wire(self, raw: JSON) -> JSON:
        """A stored event in its bus form (StoredEvent.to_json) with its data opened."""
        data = await self.open_event(
            str(raw["event_type"]), dict(raw["data"]), dict(raw["metadata"]), str(raw["stream_id"])
        )
        return {**raw, "data": data}

    async def seal_command(self, command: C) -> C:
        """The command with its personal fields sealed, for the commands topic."""
        data = command.model_dump(mode="json")
        sealed = await self._fields.seal(
            command.tenant,
            command.subject,
            _command_scope(command.command_id),
            data,
            personal_fields(type(command)),
        )
        return type(command).model_validate(sealed)

    async def open_command(self, command: C) -> C:
        """The command with its personal fields opened; an erased subject's read as placeholders.

        Raises:
            DecryptionError: a sealed value was altered or moved.
        """
        data = command.model_dump(mode="json")
        scope = _command_scope(command.command_id)
        opened, gone = await self._fields.open(command.tenant, command.subject, scope, data)
        for name in gone:
            opened[name] = erased_value(type(command), name)
        return type(command).model_validate(opened)
