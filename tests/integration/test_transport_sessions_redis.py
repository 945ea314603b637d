"""The transport sessions contract on real Redis, isolated by a per-test key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_ledger.mcp_api.transport.sessions import TransportSessions
from mcp_ledger.mcp_api.transport.sessions_redis import RedisTransportSessions
from tests.contracts.transport_sessions_contract import TransportSessionsContract

pytestmark = pytest.mark.integration


class TestRedisTransportSessions(TransportSessionsContract):
    @pytest.fixture
    async def sessions(self, services_env: dict[str, str], unique: str) -> AsyncIterator[TransportSessions]:
        store = RedisTransportSessions.from_url(services_env["LEDGER_STATE"], prefix=f"test-{unique}:")
        yield store
        await store.close()
