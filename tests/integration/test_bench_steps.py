"""`mcp-ledger bench steps`, the mcp-ledger half and the bare INSERT, on real PostgreSQL (DBOS
is the `bench` extra, not installed here): the plans it times run to success."""

from __future__ import annotations

import pytest

from mcp_ledger.bench.steps import bare_insert_ms, ledger_costs

pytestmark = pytest.mark.integration


async def test_the_step_bench_runs_its_plans_to_success_and_times_a_bare_insert(
    services_env: dict[str, str],
) -> None:
    costs = await ledger_costs(services_env["LEDGER_STORE"], steps=3, repeats=1)
    assert set(costs) == {"one_step_ms", "3_steps_ms", "per_step_ms", "fixed_ms"}
    assert costs["3_steps_ms"] > 0
    assert await bare_insert_ms(services_env["LEDGER_STORE"], repeats=5) > 0
