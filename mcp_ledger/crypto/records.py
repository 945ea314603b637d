"""Sealing events and commands as they are stored and published: every field but the allowlist.

Owns applying the domain's rule (domain/personal.py: every field is sealed unless
NOT_PERSONAL names it) to stored events and to commands in their wire form, the scope each
sealed field is bound to (an event's stream and type; a command's id), and turning fields of
erased subjects into placeholders. An event type this code does not know is sealed whole.
Events whose fields are all on the allowlist never touch the key store, so recording an
erasure never recreates the erased subject's key. Records written before a field became
sealed keep it in the clear and still read. Does not append or publish anything.
"""

from __future__ import annotations

from typing import Any, get_args

from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.sealing import FieldSealer, erased_value, is_sealed
from mcp_ledger.domain.commands import AnyCommand, Command
from mcp_ledger.domain.events import EVENT_TYPES
from mcp_ledger.domain.personal import personal_fields

JSON = dict[str, Any]

COMMAND_TYPES: dict[str, type[Command]] = {
    cls.model_fields["kind"].default: cls for cls in get_args(get_args(AnyCommand)[0])
}
"""The commands of ledger.commands by their `kind`."""


class MissingSubjectError(ValueError):
    """An event with fields to seal has no tenant and subject to seal them for."""


def _event_scope(stream_id: str, event_type: str) -> str:
    return f"event|{stream_id}|{event_type}"


def _command_scope(command_id: str) -> str:
    return f"command|{command_id}"


def _owner(metadata: JSON) -> tuple[str, str] | None:
    tenant, subject = metadata.get("tenant"), metadata.get("subject")
    if isinstance(tenant, str) and isinstance(subject, str):
        return tenant, subject
    return None


def sealed_fields(event_type: str, data: JSON) -> frozenset[str]:
    """The fields of an event type that are sealed (all of `data` for a type unknown here)."""
    cls = EVENT_TYPES.get(event_type)
    return personal_fields(cls) if cls is not None else frozenset(data)


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
        """An event's data with every field not on the allowlist sealed.

        Raises:
            MissingSubjectError: it has fields to seal but no tenant/subject in metadata.
        """
        names = sealed_fields(event_type, data)
        if not names & set(data):
            return data
        owner = _owner(metadata)
        if owner is None:
            raise MissingSubjectError(f"{event_type} has fields to seal but no tenant and subject")
        return await self._fields.seal(*owner, _event_scope(stream_id, event_type), data, names)

    async def open_event(self, event_type: str, data: JSON, metadata: JSON, stream_id: str) -> JSON:
        """An event's data with sealed fields opened; an erased subject's read as placeholders.

        Raises:
            DecryptionError: a sealed value was altered or moved.
        """
        owner = _owner(metadata)
        if owner is None:
            return data
        scope = _event_scope(stream_id, event_type)
        opened, gone = await self._fields.open(*owner, scope, data, sealed_fields(event_type, data))
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

    async def seal_command(self, command: Command) -> JSON:
        """The command's wire form (JSON) with every field not on the allowlist sealed.

        A sealed field no longer fits the field's type, so the wire form is JSON, not a model:
        `open_command` turns it back into what `CommandEnvelope` validates.
        """
        data = command.model_dump(mode="json")
        scope = _command_scope(command.command_id)
        names = personal_fields(type(command))
        return await self._fields.seal(command.tenant, command.subject, scope, data, names)

    async def open_command(self, data: JSON) -> JSON:
        """A command's wire form with its sealed fields opened, an erased subject's read as
        placeholders; a form naming no known command or owner is returned as it is (the
        envelope's validation then refuses it).

        Raises:
            DecryptionError: a sealed value was altered or moved.
        """
        cls = COMMAND_TYPES.get(str(data.get("kind")))
        tenant, subject, command_id = data.get("tenant"), data.get("subject"), data.get("command_id")
        if cls is None or not all(isinstance(v, str) for v in (tenant, subject, command_id)):
            return data
        scope = _command_scope(str(command_id))
        opened, gone = await self._fields.open(str(tenant), str(subject), scope, data, personal_fields(cls))
        for name in gone:
            opened[name] = erased_value(cls, name)
        return opened
