"""The registry view store contract on the in-memory store."""

from __future__ import annotations

import pytest

from mcp_ledger.projections.registry.memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry.ports import RegistryViewStore
from tests.contracts.registry_views_contract import RegistryViewStoreContract


class TestMemoryRegistryViews(RegistryViewStoreContract):
    @pytest.fixture
    def registry(self) -> RegistryViewStore:
        return MemoryRegistryViewStore()
