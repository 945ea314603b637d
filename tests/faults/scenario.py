"""One fault under load, and the checks after it: the load warms up, the fault is injected for a
few seconds and taken away, the load runs until every client has been answered again, then the
store's history must be exact (tests/support/history.py), everything published, the views equal
a rebuild (tests/support/convergence.py), and what the agents saw must hold
(tests/faults/operations.py). Each scenario prints one row of the fault table.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.linearizability import plan_verdict, verdict
from tests.faults.mcp_tasks import TaskRpcError, settled
from tests.faults.operations import CLIENTS, Operation, Recorder, agent_problems, run_clients, tally
from tests.faults.stack import CALL_TIMEOUT, FaultStack
from tests.support.convergence import (
    plan_views_converge,
    published_commands,
    unpublished_positions,
    views_converge,
)
from tests.support.history import History, load_history, plan_statuses, problems_in, unsettled_tasks
from tests.support.load import wait_for

WARM_SECONDS = 1.0
RECOVERY_SECONDS = 60.0
SETTLE_SECONDS = 90.0
GRACE_SECONDS = 6.0
"""How long past the gateway's call timeout an answer may take (a reconnect, a slow close)."""
COLUMNS = (
    "fault",
    "attempted",
    "answered",
    "errors",
    "timeouts",
    "lost",
    "duplicated",
    "recovery s",
    "MCP tasks ok / failed",
    "plan_status reads",
)

Fault = Callable[[FaultStack], Awaitable[None]]
"""Injects a fault and returns once it is over (every toxic removed)."""


@dataclass
class Row:
    fault: str
    counts: dict[str, int]
    lost: int
    duplicated: int
    recovery: float
    tasks: Counter[str]
    """The MCP tasks' outcomes (ok, fail, timeout)."""
    plan_reads: int
    """plan_status reads answered ok (each checked by porcupine's plan model)."""

    def cells(self) -> tuple[str, ...]:
        c = self.counts
        return (
            self.fault,
            *(str(c[k]) for k in ("attempted", "answered", "errors", "timeouts")),
            str(self.lost),
            str(self.duplicated),
            f"{self.recovery:.1f}",
            f"{self.tasks['ok']} / {self.tasks['fail'] + self.tasks['timeout']}",
            str(self.plan_reads),
        )


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table (the form docs/reliability.md quotes)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join([*lines, *("| " + " | ".join(row.cells()) + " |" for row in rows)])


async def _recovered(recorder: Recorder, healed: float) -> float:
    """Seconds from the end of the fault until every client had an ok answer to a call it
    made after the end (bounded)."""

    def first_ok(client: int) -> float | None:
        return next(
            (
                op.completed
                for op in recorder.operations
                if op.client == client and op.outcome == "ok" and op.invoked >= healed
            ),
            None,
        )

    await wait_for(
        lambda: all(first_ok(c) is not None for c in range(CLIENTS)),
        "every client answered again",
        RECOVERY_SECONDS,
    )
    return max(float(first_ok(c) or 0.0) for c in range(CLIENTS)) - healed


def _warm(recorder: Recorder) -> bool:
    return recorder.ok_since(0.0) >= 2 * CLIENTS


async def under_fault(
    stack: FaultStack,
    name: str,
    fault: Fault,
    echo: str = "echo",
    warmed: Callable[[Recorder], bool] = _warm,
    echoers: int = 0,
) -> tuple[Recorder, float]:
    """Run the load (with `echoers` clients calling only `echo`), inject `fault` in the middle
    (once `warmed` holds, and a second more); (the recorded load, recovery s)."""
    recorder, stop = Recorder(), asyncio.Event()
    tag = f"f{secrets.token_hex(3)}"
    load = asyncio.create_task(run_clients(stack.api.url, tag, recorder, stop, echo, echoers))
    try:
        await wait_for(lambda: warmed(recorder), "the load warms up", 60)
        await asyncio.sleep(WARM_SECONDS)
        await fault(stack)
        healed = time.monotonic()
        recovery = await _recovered(recorder, healed)
    finally:
        stop.set()
        await asyncio.wait_for(load, CALL_TIMEOUT + 60)
    return recorder, recovery


def _counts(history: History, published: set[str], calls: set[str]) -> tuple[int, int, list[str]]:
    problems = problems_in(history, published, calls)
    lost = sum(1 for p in problems if " has 0 outcomes" in p)
    return lost, len(problems) - lost, problems


async def _ask_unsettled(stack: FaultStack, history: History) -> list[str]:
    """tasks/get, as an agent coming back would, for every task the store holds unsettled (one
    whose start was answered but lost on the way, or whose waiting replica gave up): each must
    settle within the call timeout plus the grace; what did not, and why."""
    problems = []
    for task_id in unsettled_tasks(history):
        try:
            await settled(stack.api.url, None, task_id, time.monotonic() + CALL_TIMEOUT + GRACE_SECONDS)
        except (TaskRpcError, TimeoutError) as error:
            problems.append(f"unsettled task {task_id}: {error}; {_trail(history, task_id)}")
    return problems


def _trail(history: History, task_id: str) -> str:
    """What the store holds of an unsettled task and of its command (for the failure message)."""
    streams = {e.stream_id for e in history.events if e.data.get("task_id") == task_id}
    mine = [e for e in history.events if e.stream_id in streams]
    command = next((str(e.data.get("command_id")) for e in mine if e.event_type == "McpTaskCreated"), "")
    ran = [e.event_type for e in history.events if command and command in (e.command_id, e.names)]
    return f"task events {[e.event_type for e in mine]}, its command {command}: {ran}"


def _plan_read(op: Operation) -> bool:
    return op.tool == "plan_status" and op.outcome == "ok"


async def check_after(stack: FaultStack, name: str, recorder: Recorder, recovery: float) -> Row:
    """Every check after a fault; the table row, printed.

    Raises:
        AssertionError: any of them failed (the message says which and how).
    """
    env, tenant = stack.direct, stack.direct["LEDGER_LOCAL_TENANT"]
    topic = f"{env['LEDGER_TOPIC_PREFIX']}ledger"
    published, calls = await published_commands(env["LEDGER_BUS"], f"{topic}.commands")
    problems: list[str] = ["not checked yet"]
    history = await load_history(env, tenant)
    unsettled = await _ask_unsettled(stack, history)
    try:
        async with asyncio.timeout(SETTLE_SECONDS):
            while True:
                history = await load_history(env, tenant)
                lost, duplicated, problems = _counts(history, published, calls)
                if not problems and not history.outbox_rows:
                    break
                await asyncio.sleep(0.5)
    except TimeoutError:
        pass
    seen = Counter(op.error[:90] for op in recorder.operations if op.outcome != "ok")
    tasks = Counter(str(op.outcome) for op in recorder.operations if op.tool.startswith("task:"))
    reads = Counter(str((op.result or {}).get("status")) for op in recorder.operations if _plan_read(op))
    row = Row(name, tally(recorder), lost, duplicated, recovery, tasks, reads.total())
    print(f"\n{table([row])}\nerrors the agents saw: {dict(seen)}\nMCP tasks: {dict(tasks)}")
    print(f"plan_status reads answered: {dict(reads)}")
    assert tasks, "the load ran no MCP task"
    assert not unsettled, unsettled
    assert not problems, f"history not exact after {SETTLE_SECONDS:.0f}s: {problems[:10]}"
    assert await unpublished_positions(env["LEDGER_BUS"], f"{topic}.events", history) == []
    assert agent_problems(recorder, CALL_TIMEOUT + GRACE_SECONDS) == []
    assert verdict(recorder.operations) == "Ok", "porcupine: the session notes are not linearizable"
    assert reads, "the load read no plan's status"
    assert plan_verdict(recorder.operations) == "Ok", "porcupine: a plan's status went back"
    statuses = plan_statuses(history)
    assert all(statuses.get(plan_id) == ["succeeded"] for plan_id in recorder.plans), statuses
    assert await views_converge(env, tenant, f"rebuilt-{secrets.token_hex(4)}:", 60) > 0
    assert await plan_views_converge(env, tenant, 30) >= len(recorder.plans)
    return row
