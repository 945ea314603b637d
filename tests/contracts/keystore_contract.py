"""One contract for every KeyStore: SQLite in unit tests, PostgreSQL in integration.

Every test uses a fresh tenant, so a database may be shared between tests and runs.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mcp_ledger.crypto.ports import KeyDestroyedError, KeyStore


class KeyStoreContract:
    """Subclasses provide `keys` and `rival` (a second store on the same database)."""

    @pytest.fixture
    def keys(self) -> KeyStore:
        raise NotImplementedError

    @pytest.fixture
    def rival(self) -> KeyStore:
        raise NotImplementedError

    @pytest.fixture
    def tenant(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}"

    async def test_a_subject_gets_one_key_that_is_returned_again(self, keys: KeyStore, tenant: str) -> None:
        first = await keys.active_key(tenant, "alice")
        assert len(first.key) == 32
        assert await keys.active_key(tenant, "alice") == first
        assert await keys.key(tenant, "alice", first.key_id) == first

    async def test_subjects_get_different_keys(self, keys: KeyStore, tenant: str) -> None:
        alice, bob = await keys.active_key(tenant, "alice"), await keys.active_key(tenant, "bob")
        assert alice.key != bob.key
        assert alice.key_id != bob.key_id

    async def test_a_key_cannot_be_read_as_another_subjects(self, keys: KeyStore, tenant: str) -> None:
        alice = await keys.active_key(tenant, "alice")
        with pytest.raises(KeyDestroyedError):
            await keys.key(tenant, "bob", alice.key_id)

    async def test_concurrent_first_uses_agree_on_one_key(
        self, keys: KeyStore, rival: KeyStore, tenant: str
    ) -> None:
        found = await asyncio.gather(*(store.active_key(tenant, "alice") for store in (keys, rival) * 4))
        assert len({key.key_id for key in found}) == 1

    async def test_a_destroyed_key_is_never_returned_again(self, keys: KeyStore, tenant: str) -> None:
        alice = await keys.active_key(tenant, "alice")
        assert await keys.destroy(tenant, "alice") == 1
        with pytest.raises(KeyDestroyedError):
            await keys.key(tenant, "alice", alice.key_id)

    async def test_destroying_twice_destroys_nothing_the_second_time(
        self, keys: KeyStore, tenant: str
    ) -> None:
        await keys.active_key(tenant, "alice")
        assert await keys.destroy(tenant, "alice") == 1
        assert await keys.destroy(tenant, "alice") == 0

    async def test_a_subject_that_returns_after_erasure_gets_a_new_key(
        self, keys: KeyStore, tenant: str
    ) -> None:
        old = await keys.active_key(tenant, "alice")
        await keys.destroy(tenant, "alice")
        new = await keys.active_key(tenant, "alice")
        assert new.key_id != old.key_id
        assert new.key != old.key

    async def test_destroying_one_subject_leaves_the_others(self, keys: KeyStore, tenant: str) -> None:
        bob = await keys.active_key(tenant, "bob")
        await keys.active_key(tenant, "alice")
        await keys.destroy(tenant, "alice")
        assert await keys.key(tenant, "bob", bob.key_id) == bob
