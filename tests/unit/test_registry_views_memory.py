"""The registry view store contract on the in-memory store."""

from __future__ import annotations

import pytest

from mcp_ledger.projections.registry_memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry_ports import RegistryViewStore
from tests.contracts.registry_views_contract import RegistryViewStoreContract


class TestMemoryRegistryViews(RegistryViewStoreContract):
    @pytest.fixture
    def registry(self) -> RegistryViewStore:
        return MemoryRegistryViewStore()
