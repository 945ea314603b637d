"""Sealing personal fields: each value becomes AES-GCM ciphertext under its subject's data key.

A sealed field is {"$sealed": base64(nonce || ciphertext), "kid": key id}. The associated
data binds it to tenant, subject, scope (stream and event type, or the command) and field
name, so a sealed value copied anywhere else does not open. A value whose key was destroyed
opens as an explicit erased placeholder that still fits the field's type, so replays fold.
Does not decide which fields are sealed (domain/personal.py does) or where keys live.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from mcp_ledger.crypto.cipher import decrypt, encrypt
from mcp_ledger.crypto.ports import DataKey, KeyDestroyedError, KeyStore

SEALED = "$sealed"
KEY_ID = "kid"
ERASED_MARK = "$erased"


def erased() -> dict[str, bool]:
    """The value an erased dict-like field reads as."""
    return {ERASED_MARK: True}


def is_sealed(value: object) -> bool:
    """Whether a stored value is a sealed field."""
    return isinstance(value, dict) and set(value) == {SEALED, KEY_ID}


@lru_cache(maxsize=256)
def erased_value(model: type[BaseModel], name: str) -> Any:
    """The erased placeholder that validates as field `name` of `model`.

    Raises:
        TypeError: no placeholder fits the field's type.
    """
    annotation = model.model_fields[name].annotation
    if annotation is None:
        raise TypeError(f"{model.__name__}.{name} has no type")
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    for candidate in (erased(), [erased()], "[erased]", ["[erased]"], None):
        try:
            adapter.validate_python(candidate)
        except ValidationError:
            continue
        return candidate
    raise TypeError(f"no erased placeholder fits {model.__name__}.{name}")


def _associated(tenant: str, subject: str, scope: str, field: str) -> bytes:
    return json.dumps(["ledger-field", tenant, subject, scope, field]).encode()


class FieldSealer:
    """Seals and opens named fields of a JSON object with the subject's data key."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    @property
    def keys(self) -> KeyStore:
        return self._keys

    async def seal(
        self, tenant: str, subject: str, scope: str, data: Mapping[str, Any], names: Collection[str]
    ) -> dict[str, Any]:
        """`data` with the fields in `names` sealed (the key is created on first use)."""
        present = [name for name in names if name in data]
        if not present:
            return dict(data)
        key = await self._keys.active_key(tenant, subject)
        sealed = dict(data)
        for name in present:
            plain = json.dumps(data[name], ensure_ascii=False, separators=(",", ":")).encode()
            blob = encrypt(key.key, plain, _associated(tenant, subject, scope, name))
            sealed[name] = {SEALED: base64.b64encode(blob).decode(), KEY_ID: key.key_id}
        return sealed

    async def open(
        self,
        tenant: str,
        subject: str,
        scope: str,
        data: Mapping[str, Any],
        names: Collection[str] | None = None,
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """`data` with sealed fields opened (only those in `names`, when given: a look-alike
        in a field that is never sealed stays as it is), and the names of those whose key is
        destroyed (left for the caller to replace with a placeholder).

        Raises:
            DecryptionError: a sealed value was altered or moved from elsewhere.
        """
        opened, gone = dict(data), set()
        keys: dict[str, DataKey | None] = {}
        for name, value in data.items():
            if not is_sealed(value) or (names is not None and name not in names):
                continue
            key_id = str(value[KEY_ID])
            if key_id not in keys:
                keys[key_id] = await self._key_or_none(tenant, subject, key_id)
            key = keys[key_id]
            if key is None:
                gone.add(name)
                continue
            blob = base64.b64decode(value[SEALED])
            opened[name] = json.loads(decrypt(key.key, blob, _associated(tenant, subject, scope, name)))
        return opened, frozenset(gone)

    async def _key_or_none(self, tenant: str, subject: str, key_id: str) -> DataKey | None:
        try:
            return await self._keys.key(tenant, subject, key_id)
        except KeyDestroyedError:
            return None
