"""A write that succeeds while its acknowledgement is lost: the writer sees an error and retries,
and the retry must not record twice.

On PostgreSQL the cut is deterministic: the processes reach the store through a proxy that
reads the wire protocol (tests/faults/commit_cutter.py) and, while armed, closes the connection
of every second append right after the server's CommandComplete for its COMMIT, before the
ReadyForQuery that would end the exchange. The append is committed and its writer saw the
connection drop in its COMMIT; the proxy records each cut transaction's command record, so the
test knows which commands were caught, and each of them must have been recorded once, with
exactly one outcome. On Kafka, Toxiproxy's timeout toxic on the broker -> gateway direction
lets produce requests through and withholds every answer until the connection is closed; the
producer is idempotent (acks=all, enable_idempotence): a resent batch is not stored twice, and
a command redelivered for any reason is still recorded once.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.faults.commit_cutter import CommitCutter, commit_cutter
from tests.faults.scenario import Fault, Row, check_after, table, under_fault
from tests.faults.stack import FaultStack, fault_stack
from tests.support.convergence import read_topic
from tests.support.history import load_history
from tests.support.load import wait_for
from tests.support.processes import METRICS_LISTENING

pytestmark = pytest.mark.timeout(300)

CUTS = 5
"""Appends whose COMMIT acknowledgement the PostgreSQL proxy drops (every second one, armed)."""
CYCLES = 10
CUT_MS = 700
"""How long answers are withheld before the connections are closed."""
ROWS: list[Row] = []
APPENDED = re.compile(r'^ledger_events_appended_total\{event_type="ToolCalled"\} (\d+(?:\.\d+)?)$', re.M)


@pytest.fixture(scope="module")
def cutter(migrated: dict[str, str]) -> Iterator[CommitCutter]:
    store = make_url(migrated["LEDGER_STORE"])
    with commit_cutter((str(store.host), int(store.port or 5432)), wanted=CUTS) as made:
        yield made


@pytest.fixture(scope="module")
def stack(
    migrated: dict[str, str],
    exports: dict[str, str],
    cutter: CommitCutter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultStack]:
    # Many appends in flight at once, so the worker retries while others carry on.
    extra = {"LEDGER_METRICS_PORT": "0", "LEDGER_WORKER_CONCURRENCY": "8"}
    tmp = tmp_path_factory.mktemp("acks")
    with fault_stack(migrated, exports, tmp, extra=extra, store_port=cutter.port) as made:
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


def _cut_appends(cutter: CommitCutter) -> Fault:
    """Armed until CUTS appends lost their COMMIT's acknowledgement (bounded)."""

    async def fault(stack: FaultStack) -> None:
        cutter.armed = True
        try:
            await wait_for(lambda: len(cutter.cuts) >= CUTS, "appends cut after their COMMIT", 60)
        finally:
            cutter.armed = False

    return fault


async def test_an_append_committed_whose_acknowledgement_was_lost_is_recorded_once(
    stack: FaultStack, cutter: CommitCutter
) -> None:
    recorder, recovery = await under_fault(stack, "pg_ack", _cut_appends(cutter))
    ROWS.append(await check_after(stack, "pg COMMIT answered, then dropped", recorder, recovery))
    history = await load_history(stack.direct, stack.direct["LEDGER_LOCAL_TENANT"])
    caught = [[value for value in params if value in history.appends] for params in cutter.cuts]
    # Each cut transaction's command record names one command the store holds (once: the
    # history above is exact, so that command has one record and exactly one outcome).
    assert [len(ids) for ids in caught] == [1] * CUTS, (cutter.cuts, caught)
    assert len({ids[0] for ids in caught}) == CUTS
    # The worker counts an append once it is acknowledged: the cut ones it never counted.
    stored = sum(1 for event in history.events if event.event_type == "ToolCalled")
    counted = _counted_by_workers(stack)
    print(f"appends cut after COMMIT {len(cutter.cuts)} of {cutter.appends_seen}; ToolCalled")
    print(f"stored {stored}, acknowledged to the worker {counted}")
    assert 0 < stored - counted <= CUTS


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
