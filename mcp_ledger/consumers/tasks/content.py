"""A task's own data key: the inner seal of its content, so its ttl can purge that task alone.

A task's personal fields (result, messages, input requests) are sealed twice: first here with
a data key of the task itself (key-store owner `streams.task_key_owner`), then, like every
event, with the subject's key by the record sealer. Destroying the task's key (the ttl purge,
consumers/tasks/purge.py) leaves that task's content unreadable while the subject's other data
stays; erasing the subject shreds the outer layer of every task of theirs at once. Owns only
the inner layer: the outer one is the record sealer's.
"""

from __future__ import annotations

from mcp_ledger.crypto.ports import KeyStore
from mcp_ledger.crypto.records import sealed_fields
from mcp_ledger.crypto.sealing import FieldSealer, erased_value
from mcp_ledger.domain.events import EVENT_TYPES, JSON
from mcp_ledger.domain.streams import task_key_owner


def _scope(task_id: str, event_type: str) -> str:
    return f"task|{task_id}|{event_type}"


class TaskContentKeys:
    """Seals and opens one task's content with its own key, and destroys that key."""

    def __init__(self, keys: KeyStore) -> None:
        self._fields = FieldSealer(keys)
        self._keys = keys

    async def seal(self, tenant: str, subject: str, task_id: str, event_type: str, data: JSON) -> JSON:
        """The event's data with its personal fields sealed under the task's key."""
        names = sealed_fields(event_type, data)
        owner = task_key_owner(subject, task_id)
        return await self._fields.seal(tenant, owner, _scope(task_id, event_type), data, names)

    async def open(self, tenant: str, subject: str, task_id: str, event_type: str, data: JSON) -> JSON:
        """The data opened; fields of a purged task (its key destroyed) as erased placeholders.

        Raises:
            DecryptionError: a sealed value was altered or moved from another task.
        """
        owner = task_key_owner(subject, task_id)
        names = sealed_fields(event_type, data)
        opened, gone = await self._fields.open(tenant, owner, _scope(task_id, event_type), data, names)
        cls = EVENT_TYPES.get(event_type)
        for name in gone:
            opened[name] = erased_value(cls, name) if cls is not None else None
        return opened

    async def destroy(self, tenant: str, subject: str, task_id: str) -> int:
        """Destroy the task's key (idempotent): how many keys were destroyed."""
        return await self._keys.destroy(tenant, task_key_owner(subject, task_id))
