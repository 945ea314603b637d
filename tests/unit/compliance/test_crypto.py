"""Envelope encryption: AES-GCM sealing, field binding, KEK parsing and the key cache."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_ledger.crypto.cache import CachingKeyStore
from mcp_ledger.crypto.cipher import DecryptionError, decrypt, encrypt, new_key
from mcp_ledger.crypto.kek import KekError, KekRing, ensure_kek_file, parse_keks
from mcp_ledger.crypto.ports import DataKey, KeyDestroyedError
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sealing import SEALED, FieldSealer, erased, is_sealed
from mcp_ledger.domain.commands import CallTool

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


class MemoryKeys:
    """A KeyStore in a dict: enough to exercise sealing and caching without a database."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], DataKey] = {}
        self.destroyed: set[str] = set()
        self.lookups = 0

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        self.lookups += 1
        found = self.keys.get((tenant, subject))
        if found is None or found.key_id in self.destroyed:
            found = DataKey(os.urandom(8).hex(), new_key())
            self.keys[(tenant, subject)] = found
        return found

    async def current_key(self, tenant: str, subject: str) -> DataKey | None:
        self.lookups += 1
        found = self.keys.get((tenant, subject))
        return None if found is None or found.key_id in self.destroyed else found

    async def key(self, tenant: str, subject: str, key_id: str) -> DataKey:
        self.lookups += 1
        found = self.keys.get((tenant, subject))
        if found is None or found.key_id != key_id or key_id in self.destroyed:
            raise KeyDestroyedError(key_id)
        return found

    async def destroy(self, tenant: str, subject: str) -> int:
        found = self.keys.get((tenant, subject))
        if found is None or found.key_id in self.destroyed:
            return 0
        self.destroyed.add(found.key_id)
        return 1

    async def close(self) -> None:
        return None


@settings(max_examples=50)
@given(plaintext=st.binary(max_size=512), associated=st.binary(max_size=64))
def test_sealed_bytes_open_with_the_same_key_and_associated_data(plaintext: bytes, associated: bytes) -> None:
    key = new_key()
    assert decrypt(key, encrypt(key, plaintext, associated), associated) == plaintext


def test_sealing_the_same_plaintext_twice_never_repeats_a_nonce() -> None:
    key = new_key()
    blobs = {encrypt(key, b"same", b"")[:12] for _ in range(200)}
    assert len(blobs) == 200


def test_a_blob_does_not_open_with_other_associated_data_or_after_a_bit_flip() -> None:
    key = new_key()
    blob = encrypt(key, b"secret", b"alice")
    with pytest.raises(DecryptionError):
        decrypt(key, blob, b"bob")
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        decrypt(key, flipped, b"alice")


@settings(max_examples=30, deadline=None)
@given(value=JSON_VALUES)
async def test_a_sealed_field_opens_to_the_same_json_value(value: Any) -> None:
    sealer = FieldSealer(MemoryKeys())
    sealed = await sealer.seal("acme", "alice", "scope", {"x": value, "y": 1}, ["x"])
    assert is_sealed(sealed["x"])
    assert sealed["y"] == 1
    opened, gone = await sealer.open("acme", "alice", "scope", sealed)
    assert opened == {"x": value, "y": 1}
    assert gone == frozenset()


async def test_a_sealed_field_moved_to_another_field_or_scope_does_not_open() -> None:
    sealer = FieldSealer(MemoryKeys())
    sealed = await sealer.seal("acme", "alice", "stream-1", {"x": "secret"}, ["x"])
    with pytest.raises(DecryptionError):
        await sealer.open("acme", "alice", "stream-1", {"y": sealed["x"]})
    with pytest.raises(DecryptionError):
        await sealer.open("acme", "alice", "stream-2", sealed)


async def test_the_ciphertext_does_not_contain_the_plaintext() -> None:
    sealer = FieldSealer(MemoryKeys())
    sealed = await sealer.seal("acme", "alice", "s", {"x": "marker-0123456789"}, ["x"])
    assert "marker-0123456789" not in str(sealed)
    assert b"marker-0123456789" not in base64.b64decode(sealed["x"][SEALED])


async def test_fields_of_an_erased_subject_open_as_placeholders_that_fit_their_types() -> None:
    keys = MemoryKeys()
    records = RecordSealer(keys)
    metadata = {"tenant": "acme", "subject": "alice"}
    data = {"command_id": "c1", "tool_name": "echo", "content": [{"type": "text", "text": "hi"}]}
    sealed = await records.seal_event("ToolSucceeded", data, metadata, "stream")
    command = await records.seal_command(
        CallTool(tenant="acme", subject="alice", tool_name="echo", arguments={"text": "hi"})
    )
    await keys.destroy("acme", "alice")

    opened = await records.open_event("ToolSucceeded", sealed, metadata, "stream")
    assert opened["content"] == [erased()]
    assert opened["command_id"] == "c1"
    assert (await records.open_command(command))["arguments"] == erased()


async def test_events_without_personal_fields_never_create_a_key() -> None:
    keys = MemoryKeys()
    data = {"erasure_id": "e1", "keys_destroyed": 1}
    assert await RecordSealer(keys).seal_event("SubjectKeysDestroyed", data, {}, "s") == data
    assert keys.keys == {}


async def test_the_cache_serves_repeated_lookups_without_the_store() -> None:
    inner = MemoryKeys()
    cache = CachingKeyStore(inner, ttl=60)
    first = await cache.active_key("acme", "alice")
    lookups = inner.lookups
    assert await cache.active_key("acme", "alice") == first
    assert await cache.key("acme", "alice", first.key_id) == first
    assert inner.lookups == lookups


async def test_the_cache_never_serves_a_key_destroyed_through_it() -> None:
    cache = CachingKeyStore(MemoryKeys(), ttl=60)
    first = await cache.active_key("acme", "alice")
    await cache.destroy("acme", "alice")
    with pytest.raises(KeyDestroyedError):
        await cache.key("acme", "alice", first.key_id)
    assert (await cache.active_key("acme", "alice")).key_id != first.key_id


async def test_the_cache_is_bounded() -> None:
    inner = MemoryKeys()
    cache = CachingKeyStore(inner, max_entries=3, ttl=60)
    for number in range(10):
        await cache.active_key("acme", f"s{number}")
    lookups = inner.lookups
    await cache.active_key("acme", "s0")
    assert inner.lookups == lookups + 1


async def test_an_expired_cache_entry_is_looked_up_again() -> None:
    inner = MemoryKeys()
    cache = CachingKeyStore(inner, ttl=0)
    key = await cache.active_key("acme", "alice")
    await inner.destroy("acme", "alice")  # by another process: the cache cannot know
    with pytest.raises(KeyDestroyedError):
        await cache.key("acme", "alice", key.key_id)


def test_kek_entries_must_be_base64_of_32_bytes() -> None:
    good = base64.b64encode(new_key()).decode()
    assert len(parse_keks(f"{good}, {good}")) == 2
    with pytest.raises(KekError):
        parse_keks("not base64!")
    with pytest.raises(KekError):
        parse_keks(base64.b64encode(b"short").decode())
    with pytest.raises(KekError):
        parse_keks("  ")


def test_the_embedded_kek_file_is_made_once_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "kek"
    ensure_kek_file(path)
    first = KekRing.from_file(path).current
    ensure_kek_file(path)
    assert KekRing.from_file(path).current == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
