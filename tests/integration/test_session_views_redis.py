"""The session view store contract on real Redis, isolated by a per-test key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from tests.contracts.session_views_contract import SessionViewStoreContract

pytestmark = pytest.mark.integration


class TestRedisSessionViews(SessionViewStoreContract):
    @pytest.fixture
    async def views(self, services_env: dict[str, str], unique: str) -> AsyncIterator[SessionViewStore]:
        store = RedisSessionViewStore.from_url(services_env["LEDGER_STATE"], prefix=f"test-{unique}:")
        yield store
        await store.clear()
        await store.close()
