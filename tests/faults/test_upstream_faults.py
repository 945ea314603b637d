"""An upstream MCP server that is slow, hangs, resets its connections or closes them slowly,
while 8 clients call its tool through the gateway (and the gateway's own note and plan tools):
every call is answered with its true result or a clear, retryable error before its timeout,
exactly one outcome each, and every client is answered again after the fault. Under the hang
the upstream's circuit breaker must open, the calls it refuses must fail fast (well below the
tool's timeout), and a half-open probe must close it once the upstream answers again; a second
table prints the upstream calls per fault (docs/reliability.md).

The fixture upstream (tests/support/upstream.py, the SDK's MCPServer over Streamable HTTP) runs
on its own event loop in a thread, so it serves while the test thread blocks; the worker reaches
it only through a Toxiproxy proxy. Its tools get a 2 s timeout (below the gateway's 5 s call
timeout, so a hung call ends as a recorded tool error the agent is told about), and the breaker
a 2 s cooldown after 3 failures, so recovery is seen within the test. The load warms up until
every client has had its upstream echo answered, so the hang meets held upstream sessions (a
call's read timeout) rather than connections being opened.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.faults.operations import CLIENTS, UPSTREAM_ECHO, Operation, Recorder
from tests.faults.scenario import Fault, Row, check_after, table, under_fault
from tests.faults.stack import FaultStack, fault_stack
from tests.integration.services import name_fragment
from tests.support.clients import mcp_client, structured
from tests.support.toxiproxy import ToxicType, proxies
from tests.support.upstream import RunningUpstream, upstream_server

pytestmark = pytest.mark.timeout(300)

FAULT_SECONDS = 3.0
HANG_SECONDS = 6.0
"""Long enough for several calls to time out (2 s each) and open the breaker (3 failures)."""
UPSTREAM_TIMEOUT_S = 2.0
EXTRA = {
    "LEDGER_UPSTREAM_BREAKER_FAILURES": "3",
    "LEDGER_UPSTREAM_BREAKER_COOLDOWN": "2",
    # Every client's command handled at once: with the default 2, two hung calls held both
    # command slots and the breaker could never see more than two failures per hang.
    "LEDGER_WORKER_CONCURRENCY": "8",
    "LEDGER_REGISTRY_ALLOWED_HOSTS": "127.0.0.1",  # the proxy in front of the fixture upstream
}
OPEN_CIRCUIT = "the circuit is open"
START_SECONDS = 30.0
CLOSED_AGAIN_SECONDS = 20.0
ECHOERS = 4
"""Clients that call only the upstream echo, beside the 8: enough calls in flight when the
upstream hangs to reach the breaker's threshold of 3 on a loaded machine (the 8 clients call
it once in six steps, at a few seconds a step)."""
UPSTREAM_COLUMNS = (
    "fault",
    "upstream calls",
    "ok",
    "failed",
    "failed fast (circuit open)",
    "median s to fail fast",
    "median s to fail otherwise",
    "median s ok",
    "upstream ok again s",
)
ROWS: list[Row] = []
UPSTREAM_ROWS: list[tuple[str, ...]] = []


@contextmanager
def threaded_upstream() -> Iterator[RunningUpstream]:
    """The fixture upstream on its own event loop in a thread, until the block ends.

    Raises:
        RuntimeError: it did not start.
    """
    box: list[RunningUpstream] = []
    started, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with upstream_server(legacy=False) as running:
            box.append(running)
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.1)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="upstream", daemon=True)
    thread.start()
    if not started.wait(START_SECONDS):
        raise RuntimeError("the fixture upstream did not start")
    try:
        yield box[0]
    finally:
        stop.set()
        thread.join(START_SECONDS)


async def _register(url: str, upstream_url: str) -> None:
    async with mcp_client(url) as client:
        structured(
            await client.call_tool(
                "register_server",
                {"name": "fixture", "url": upstream_url, "prefix": "fx", "timeout_s": UPSTREAM_TIMEOUT_S},
            )
        )


@pytest.fixture(scope="module")
def stack(
    migrated: dict[str, str], exports: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultStack]:
    tmp = tmp_path_factory.mktemp("upstream")
    with (
        threaded_upstream() as upstream,
        proxies(
            exports["LEDGER_TOXIPROXY_URL"], {f"up-{name_fragment()}": f"127.0.0.1:{upstream.port}"}
        ) as made,
        fault_stack(migrated, exports, tmp, extra=EXTRA) as stack,
    ):
        (proxy,) = made.values()
        stack.proxy["upstream"] = proxy
        asyncio.run(_register(stack.api.url, f"http://127.0.0.1:{proxy.port}/mcp"))
        yield stack
    print(f"\nupstream faults:\n{table(ROWS)}\n\nupstream calls:\n{_upstream_table()}")


def _toxic(kind: ToxicType, **attributes: int) -> Fault:
    async def fault(stack: FaultStack) -> None:
        with stack.proxy["upstream"].toxic(kind, attributes):
            await asyncio.sleep(FAULT_SECONDS)

    return fault


async def _hang(stack: FaultStack) -> None:
    """Nothing passes either way: the upstream accepts connections and never answers."""
    proxy = stack.proxy["upstream"]
    with proxy.toxic("timeout", {"timeout": 0}, stream="upstream"), proxy.toxic("timeout", {"timeout": 0}):
        await asyncio.sleep(HANG_SECONDS)


FAULTS: dict[str, Fault] = {
    "upstream latency 300±200ms": _toxic("latency", latency=300, jitter=200),
    f"upstream hangs {HANG_SECONDS:.0f}s": _hang,
    "upstream reset_peer": _toxic("reset_peer", timeout=200),
    "upstream slow_close 2s": _toxic("slow_close", delay=2000),
}


def _median(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.2f}" if seconds else "-"


def _upstream_row(name: str, calls: list[Operation], ok_again: float | None) -> tuple[str, ...]:
    failed = [op for op in calls if op.outcome != "ok"]
    fast = [op.seconds for op in failed if OPEN_CIRCUIT in op.error]
    other = [op.seconds for op in failed if OPEN_CIRCUIT not in op.error]
    counts = (len(calls), len(calls) - len(failed), len(failed), len(fast))
    again = "-" if ok_again is None else f"{ok_again:.1f}"
    ok = [op.seconds for op in calls if op.outcome == "ok"]
    return (name, *map(str, counts), _median(fast), _median(other), _median(ok), again)


def _upstream_table() -> str:
    lines = ["| " + " | ".join(UPSTREAM_COLUMNS) + " |", "|" + "---|" * len(UPSTREAM_COLUMNS)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in UPSTREAM_ROWS)])


def _every_client_echoed_upstream(recorder: Recorder) -> bool:
    answered = {op.client for op in recorder.operations if op.tool == UPSTREAM_ECHO and op.outcome == "ok"}
    return len(answered) == CLIENTS + ECHOERS


def _first_ok_after(calls: list[Operation], healed: float) -> float | None:
    """Seconds from the end of the fault until the first upstream echo started after it was
    answered (the breaker, if it opened, closed by its probe), None if the load made none."""
    done = [op.completed for op in calls if op.outcome == "ok" and op.invoked >= healed]
    return min(done) - healed if done else None


async def _answered_again(url: str) -> None:
    """An upstream echo is answered with its true result within CLOSED_AGAIN_SECONDS (asked
    every 0.2 s): the breaker did not stay open.

    Raises:
        AssertionError: it was not.
    """
    probe, deadline = Recorder(), time.monotonic() + CLOSED_AGAIN_SECONDS
    while time.monotonic() < deadline:
        op = await probe.call(url, None, -1, UPSTREAM_ECHO, {"text": "again"})
        if op.outcome == "ok" and op.result == {"result": "again"}:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no upstream echo answered within {CLOSED_AGAIN_SECONDS:.0f}s: {probe.operations}")


@pytest.mark.parametrize("name", list(FAULTS))
async def test_an_upstream_fault_under_load_leaves_an_exact_history_and_true_answers(
    stack: FaultStack, name: str
) -> None:
    healed: list[float] = []

    async def fault(stack: FaultStack) -> None:
        await FAULTS[name](stack)
        healed.append(time.monotonic())

    recorder, recovery = await under_fault(
        stack,
        name.replace(" ", "_"),
        fault,
        echo=UPSTREAM_ECHO,
        warmed=_every_client_echoed_upstream,
        echoers=ECHOERS,
    )
    ROWS.append(await check_after(stack, name, recorder, recovery))
    upstream_calls = [op for op in recorder.operations if op.tool == UPSTREAM_ECHO]
    await _answered_again(stack.api.url)
    ok_again = _first_ok_after(upstream_calls, healed[0])
    UPSTREAM_ROWS.append(row := _upstream_row(name, upstream_calls, ok_again))
    print(f"upstream calls: {dict(zip(UPSTREAM_COLUMNS, row, strict=True))}")
    assert any(op.outcome == "ok" for op in upstream_calls), "no upstream call succeeded"
    if name.startswith("upstream hangs"):
        failed = [op for op in upstream_calls if op.outcome != "ok"]
        fast = [op.seconds for op in failed if OPEN_CIRCUIT in op.error]
        slow = [op.seconds for op in failed if OPEN_CIRCUIT not in op.error]
        assert fast, "the breaker did not open under the hang"
        # Relative, not absolute: on the loaded 2-core machine any call's round trip takes
        # seconds; a refused call must still beat the calls that waited out the tool timeout.
        assert statistics.median(fast) < statistics.median(slow), (fast, slow)
