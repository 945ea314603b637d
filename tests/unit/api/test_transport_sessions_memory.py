"""The transport sessions contract on the in-memory store."""

from __future__ import annotations

import pytest

from mcp_ledger.mcp_api.transport.sessions import MemoryTransportSessions, TransportSessions
from tests.contracts.transport_sessions_contract import TransportSessionsContract


class TestMemoryTransportSessions(TransportSessionsContract):
    @pytest.fixture
    def sessions(self) -> TransportSessions:
        return MemoryTransportSessions()
