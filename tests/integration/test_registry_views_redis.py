"""The registry view store contract on real Redis, isolated by a per-test key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.registry.redis import RedisRegistryViewStore
from tests.contracts.registry_views_contract import RegistryViewStoreContract

pytestmark = pytest.mark.integration


class TestRedisRegistryViews(RegistryViewStoreContract):
    @pytest.fixture
    async def registry(self, services_env: dict[str, str], unique: str) -> AsyncIterator[RegistryViewStore]:
        store = RedisRegistryViewStore.from_url(services_env["LEDGER_STATE"], prefix=f"test-{unique}:")
        yield store
        await store.clear()
        await store.close()
