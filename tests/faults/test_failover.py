"""Failover time: 8 clients, two workers, one SIGKILLed mid-load. Measured: how long after the
worker's death the calls that were in flight (or started meanwhile) were answered; the surviving
worker logs no error for the rebalance it goes through, and the history stays exact.

A crashed member of a Kafka consumer group (classic protocol, which aiokafka speaks) is noticed
only when its session times out: its partitions, and the calls waiting on their records, stall
for about LEDGER_KAFKA_SESSION_TIMEOUT_MS plus one rebalance. Static membership would not help
here (a static member that crashed keeps its partitions until the same timeout) and aiokafka has
no cooperative assignor; the session timeout (with a heartbeat well inside it) is the lever.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator

import pytest

from tests.faults.operations import Recorder, run_clients
from tests.faults.scenario import check_after
from tests.faults.stack import FaultStack, fault_stack
from tests.support.load import wait_for

pytestmark = pytest.mark.timeout(300)

STALL_GOAL_SECONDS = 2.0
REBALANCE_SLACK_SECONDS = 6.0
ERRORS = re.compile(r"^.*\b(ERROR|CRITICAL|Traceback|CommitFailedError)\b.*$", re.M)
TUNED = (1500, 300)
"""(session timeout, heartbeat interval) in ms measured beside the defaults (6000, 1500): it halves
the stall but does not reach the goal (docs/reliability.md has the figures)."""


def _candidates() -> list[tuple[int, int]]:
    """The settings measured: the defaults and TUNED, or those FAILOVER_CANDIDATES names
    ("session_ms:heartbeat_ms,..."), to measure other candidates without editing the test."""
    named = os.environ.get("FAILOVER_CANDIDATES", "")
    pairs = [tuple(int(n) for n in pair.split(":")) for pair in named.split(",") if pair]
    return [(p[0], p[1]) for p in pairs] or [(6000, 1500), TUNED]


@pytest.fixture(params=_candidates(), ids=lambda pair: f"session-{pair[0]}ms-heartbeat-{pair[1]}ms")
def stack(
    request: pytest.FixtureRequest,
    migrated: dict[str, str],
    exports: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultStack]:
    session_ms, heartbeat_ms = request.param
    extra = {
        # The API waits long enough that a stalled call is measured, not cut off by its timeout.
        "LEDGER_CALL_TIMEOUT": "20",
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": str(session_ms),
        "LEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": str(heartbeat_ms),
    }
    tmp = tmp_path_factory.mktemp("failover")
    with fault_stack(migrated, exports, tmp, workers=2, extra=extra) as made:
        yield made


def _stall(recorder: Recorder, died: float) -> float:
    """The longest a call in flight at the death, or started within a second of it, waited
    after the death for its answer."""
    around = [op for op in recorder.operations if op.invoked < died + 1.0 and (op.completed or 1e18) > died]
    return max((op.completed or time.monotonic()) - died for op in around)


async def test_calls_in_flight_when_a_worker_dies_are_answered_after_one_session_timeout_quietly(
    stack: FaultStack,
) -> None:
    recorder, stop = Recorder(), asyncio.Event()
    load = asyncio.create_task(run_clients(stack.api.url, "failover", recorder, stop))
    survivor, victim = stack.workers
    try:
        await wait_for(lambda: recorder.ok_since(0.0) >= 40, "the load warms up", 60)
        before = len(survivor.output())
        victim.kill()
        died = time.monotonic()
        await wait_for(lambda: recorder.ok_since(died + 1.0) >= 40, "calls succeed after the death", 60)
    finally:
        stop.set()
        await asyncio.wait_for(load, 60)
    stall = _stall(recorder, died)
    print(f"\nfailover: calls in flight answered {stall:.2f}s after the worker's death")
    await check_after(stack, f"worker SIGKILL (stall {stall:.1f}s)", recorder, stall)
    logged = ERRORS.findall(survivor.output()[before:])
    assert logged == [], f"the surviving worker logged errors for an expected rebalance: {logged[:5]}"
    # The goal (STALL_GOAL_SECONDS) is not met yet (docs/reliability.md says why): the stall is
    # measured and reported, and bounded by the session timeout plus one rebalance.
    session_ms = int(stack.proxied["LEDGER_KAFKA_SESSION_TIMEOUT_MS"])
    print(f"stall {stall:.2f}s with a {session_ms} ms session; goal {STALL_GOAL_SECONDS:.0f}s")
    assert stall <= session_ms / 1000 + REBALANCE_SLACK_SECONDS, f"calls stalled {stall:.2f}s"
