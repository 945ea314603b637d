"""A write that succeeds while its acknowledgement is lost: the caller sees an error and retries,
and the retry must not record twice.

Toxiproxy's timeout toxic on the service -> gateway direction lets the requests through (the
COMMIT of an append, a produce request) and withholds every answer, then closes the
connection: whatever was in flight succeeded and its writer saw a dropped connection. Repeated
under a load of 8 clients with 8 commands handled at once, some appends may be caught between
their COMMIT and its answer. The proof that this happened: the worker counts an append only
once it is acknowledged (ledger_events_appended), so the store holds more ToolCalled events
than the worker counted, and yet every command has exactly one outcome (the retry found the
idempotency record). The gap between a COMMIT and its answer is short: a run that caught no
append reports a skip (after the invariants were checked), not a pass. On Kafka the producer is
idempotent (acks=all, enable_idempotence): a resent batch is not stored twice, and a command
redelivered for any reason is still recorded once.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.scenario import Fault, Row, check_after, table, under_fault
from tests.faults.stack import FaultStack, fault_stack
from tests.support.convergence import read_topic
from tests.support.history import load_history
from tests.support.processes import METRICS_LISTENING

pytestmark = pytest.mark.timeout(300)

CYCLES = 10
CUT_MS = 700
"""How long answers are withheld before the connections are closed."""
ROWS: list[Row] = []
APPENDED = re.compile(r'^ledger_events_appended_total\{event_type="ToolCalled"\} (\d+(?:\.\d+)?)$', re.M)


@pytest.fixture(scope="module")
def stack(
    migrated: dict[str, str], exports: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultStack]:
    # Many appends in flight at each cut: each is a few round trips long, so some are caught
    # waiting on their COMMIT's answer.
    extra = {"LEDGER_METRICS_PORT": "0", "LEDGER_WORKER_CONCURRENCY": "8"}
    with fault_stack(migrated, exports, tmp_path_factory.mktemp("acks"), extra=extra) as made:
        yield made
    print(f"\nacknowledgements lost:\n{table(ROWS)}")


def _answers_lost(service: str) -> Fault:
    """Answers withheld, then the connections closed (Toxiproxy's timeout toxic on the
    service -> gateway direction): a writer whose request the service had carried out (a
    COMMIT, a produce) when the toxic landed loses its answer."""

    async def fault(stack: FaultStack) -> None:
        proxy = stack.proxy[service]
        for _ in range(CYCLES):
            with proxy.toxic("timeout", {"timeout": CUT_MS}):
                await asyncio.sleep(CUT_MS / 1000 + 0.3)
            await asyncio.sleep(0.7)

    return fault


def _counted_by_workers(stack: FaultStack) -> int:
    """ToolCalled events the workers saw acknowledged (their ledger_events_appended)."""
    total = 0
    for worker in stack.workers:
        port = int(worker.wait_for_match(METRICS_LISTENING, 30).group(1))
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        total += sum(int(float(n)) for n in APPENDED.findall(text))
    return total


async def test_an_append_committed_whose_answer_was_lost_is_recorded_once(stack: FaultStack) -> None:
    recorder, recovery = await under_fault(stack, "pg_ack", _answers_lost("pg"))
    ROWS.append(await check_after(stack, "pg answers lost after COMMIT", recorder, recovery))
    history = await load_history(stack.direct, stack.direct["LEDGER_LOCAL_TENANT"])
    stored = sum(1 for event in history.events if event.event_type == "ToolCalled")
    counted = _counted_by_workers(stack)
    print(f"ToolCalled stored {stored}, acknowledged to the worker {counted}")
    if stored == counted:  # the invariants above held, but the case itself did not occur
        pytest.skip("no append was caught between its COMMIT and its answer in this run")
    assert stored > counted


async def test_a_produce_whose_answer_was_lost_is_recorded_once(stack: FaultStack) -> None:
    if "kafka" not in stack.proxy:
        pytest.skip("the broker has no FAULTS listener (started before it was added: restart-kafka)")
    recorder, recovery = await under_fault(stack, "kafka_ack", _answers_lost("kafka"))
    ROWS.append(await check_after(stack, "kafka answers lost after produce", recorder, recovery))
    topic = f"{stack.direct['LEDGER_TOPIC_PREFIX']}ledger.commands"
    records = await read_topic(stack.direct["LEDGER_BUS"], topic)
    resent = Counter(dict(record.headers).get("command_id") for record in records)
    twice = sum(1 for n in resent.values() if n > 1)
    print(f"commands on the topic {len(records)}, published more than once {twice}")
