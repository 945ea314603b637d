"""The plan view store contract on real Redis, isolated by a per-test key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.redis import RedisPlanViewStore
from tests.contracts.plan_views_contract import PlanViewStoreContract

pytestmark = pytest.mark.integration


class TestRedisPlanViews(PlanViewStoreContract):
    @pytest.fixture
    async def plans(self, services_env: dict[str, str], unique: str) -> AsyncIterator[PlanViewStore]:
        store = RedisPlanViewStore.from_url(services_env["LEDGER_STATE"], prefix=f"test-{unique}:")
        yield store
        await store.clear()
        await store.close()
