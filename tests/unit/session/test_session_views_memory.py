"""The session view store contract on the in-memory store."""

from __future__ import annotations

import pytest

from mcp_ledger.projections.sessions.memory import MemorySessionViewStore
from mcp_ledger.projections.sessions.ports import SessionViewStore
from tests.contracts.session_views_contract import SessionViewStoreContract


class TestMemorySessionViews(SessionViewStoreContract):
    @pytest.fixture
    def views(self) -> SessionViewStore:
        return MemorySessionViewStore()
