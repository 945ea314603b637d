"""Each network fault, on each service's path, during a load of tool calls and plans from 8
clients: afterwards the history is exact, everything is published, the views equal a rebuild,
and every agent got its true answer or a clear, retryable error, never a hang.

One stack serves the module (starting one costs seconds of imports per process); the checks
after each fault cover everything the tenant has recorded so far.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.faults.scenario import Fault, Row, check_after, table, under_fault
from tests.faults.stack import FaultStack, fault_stack
from tests.support.toxiproxy import ToxicType

pytestmark = pytest.mark.timeout(300)

FAULT_SECONDS = 3.0
SERVICES = ("pg", "redis", "kafka")
ROWS: list[Row] = []


def _toxic(service: str, kind: ToxicType, **attributes: int) -> Fault:
    async def fault(stack: FaultStack) -> None:
        with stack.proxy[service].toxic(kind, attributes):
            await asyncio.sleep(FAULT_SECONDS)

    return fault


def _partition(service: str) -> Fault:
    """No byte passes either way until it ends (Toxiproxy's timeout toxic with timeout 0 holds
    the data of open connections and of new ones)."""

    async def fault(stack: FaultStack) -> None:
        proxy = stack.proxy[service]
        with (
            proxy.toxic("timeout", {"timeout": 0}, stream="upstream"),
            proxy.toxic("timeout", {"timeout": 0}),
        ):
            await asyncio.sleep(FAULT_SECONDS)

    return fault


FAULTS: dict[str, Fault] = {
    **{f"{s} latency 300±200ms": _toxic(s, "latency", latency=300, jitter=200) for s in SERVICES},
    **{f"{s} partition {FAULT_SECONDS:.0f}s": _partition(s) for s in SERVICES},
    **{f"{s} reset_peer": _toxic(s, "reset_peer", timeout=200) for s in SERVICES},
    **{f"{s} bandwidth 32KB/s": _toxic(s, "bandwidth", rate=32) for s in SERVICES},
    **{f"{s} slow_close 2s": _toxic(s, "slow_close", delay=2000) for s in SERVICES},
}


@pytest.fixture(scope="module")
def stack(
    migrated: dict[str, str], exports: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultStack]:
    with fault_stack(migrated, exports, tmp_path_factory.mktemp("faults")) as made:
        yield made
    print(f"\nfaults on one stack:\n{table(ROWS)}")


@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_network_fault_under_load_leaves_an_exact_history_and_true_answers(
    stack: FaultStack, name: str
) -> None:
    service = name.split(" ", 1)[0]
    if service not in stack.proxy:
        pytest.skip("the broker has no FAULTS listener (started before it was added: restart-kafka)")
    recorder, recovery = await under_fault(stack, name.replace(" ", "_"), FAULTS[name])
    ROWS.append(await check_after(stack, name, recorder, recovery))
