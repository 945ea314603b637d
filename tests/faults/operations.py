"""What the agents saw during a fault: a load of 8 clients whose every operation is recorded
(invoke, then ok, fail or timeout, with the answer) and the checks of those answers.

Owns the load (each client opens a ledger session, then echoes a text only it uses, writes and
reads its session notes; client 0 creates plans and reads the new plan's status at once, every
client reads the newest plan's status once in three steps; clients 1 to 7 run every other echo as
an MCP task, an echo or a short sleep: tests/faults/mcp_tasks.py) and the agent-side checks: an
answer is the true one (the echo of its own text, the note key it wrote, the plan it asked
about), a failure is a clear, retryable error (a tool error, a JSON-RPC error or a transport
error), no call outlived its timeout, and the notes behave as a register (a small
linearizability check). The store-side checks are tests/support/history.py's.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from mcp.shared.exceptions import MCPError
from mcp_types import ErrorData

from tests.faults.mcp_tasks import TaskRpcError, outcome_of, run_task
from tests.support.load import OUTAGE, ToolResultError, _one_call, _outage, _plan

Outcome = Literal["ok", "fail", "timeout"]
UPSTREAM_ECHO = "fx_echo"
"""The fixture upstream's echo (tests/support/upstream.py) as the gateway serves it, prefixed."""
CLIENTS = 8
CLIENT_SECONDS = 40.0
"""The agent's own bound on a call: far past the gateway's, so a hang is seen as one."""


@dataclass
class Operation:
    """One client operation, as the agent saw it."""

    client: int
    tool: str
    arguments: dict[str, Any]
    invoked: float
    completed: float = 0.0
    outcome: Outcome | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    rpc_error: ErrorData | None = None
    """The JSON-RPC error the agent got, when it got one."""
    task_id: str | None = None
    """An MCP task's id, once its start was answered (tool `task:<name>`)."""

    @property
    def seconds(self) -> float:
        return self.completed - self.invoked


@dataclass
class Recorder:
    """Every operation of a load, in invocation order."""

    operations: list[Operation] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)

    def ok_since(self, moment: float) -> int:
        return sum(1 for op in self.operations if op.outcome == "ok" and op.invoked >= moment)

    async def call(
        self, url: str, session: str | None, client: int, tool: str, arguments: dict[str, Any]
    ) -> Operation:
        """One recorded call; a failure the agent would see in an outage is recorded, any other
        exception (a bug of the load) propagates."""
        op = Operation(client, tool, arguments, time.monotonic())
        self.operations.append(op)
        try:
            async with asyncio.timeout(CLIENT_SECONDS):
                op.result = await _one_call(url, session, tool, arguments)
            op.outcome = "ok"
        except TimeoutError:
            op.outcome, op.error = "timeout", f"no answer within {CLIENT_SECONDS:.0f}s"
        except ToolResultError as error:
            op.outcome, op.error = "fail", f"tool error: {error}"
        except Exception as error:
            if not _outage(error):
                raise
            leaf = _leaf(error)
            op.outcome, op.error = "fail", f"{type(leaf).__name__}: {str(leaf)[:120]}"
            if isinstance(leaf, MCPError):
                op.rpc_error = leaf.error
        op.completed = time.monotonic()
        return op

    async def task(
        self, url: str, session: str | None, client: int, tool: str, arguments: dict[str, Any]
    ) -> Operation:
        """One recorded MCP task (tools/call with the tasks extension, then tasks/get until it
        is terminal), as the operation `task:<tool>`: ok with the tool's result, fail with the
        error the agent was given (the start's, or the task's own), timeout past CLIENT_SECONDS."""
        op = Operation(client, f"task:{tool}", arguments, time.monotonic())
        self.operations.append(op)
        try:
            op.task_id, task = await run_task(url, session, tool, arguments, op.invoked + CLIENT_SECONDS)
            op.result, op.error = outcome_of(task)
            op.outcome = "ok" if op.result is not None else "fail"
        except TimeoutError:
            op.outcome, op.error = "timeout", f"task not terminal within {CLIENT_SECONDS:.0f}s"
        except TaskRpcError as error:
            op.outcome, op.error, op.rpc_error = "fail", f"MCPError: {error}", error.error
        except (httpx.HTTPError, OSError) as error:
            op.outcome, op.error = "fail", f"{type(error).__name__}: {str(error)[:120]}"
        op.completed = time.monotonic()
        return op


def _leaf(error: BaseException) -> BaseException:
    """The first exception inside the SDK client's exception groups (what actually failed)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def _client(
    url: str, index: int, tag: str, recorder: Recorder, stop: asyncio.Event, echo: str = "echo"
) -> None:
    session: str | None = None
    for step in itertools.count():
        if stop.is_set():
            return
        if session is None:
            opened = await recorder.call(url, None, index, "session_open", {})
            session = str(opened.result["session_id"]) if opened.result else None
        elif index == 0 and step % 6 == 1:
            plan_id = f"{tag}-{step}"
            done = await recorder.call(
                url, session, index, "create_plan", {"plan": _running_plan(plan_id), "execute": True}
            )
            if done.outcome == "ok":
                recorder.plans.append(plan_id)
                await _read_status(url, session, index, recorder)  # most likely still running
        elif step % 6 == 3 and index != 0:
            await _task(url, session, index, f"{tag}-c{index}-s{step}", recorder, step)
        elif step % 3 == 0:
            await recorder.call(url, session, index, echo, {"text": f"{tag}-c{index}-s{step}"})
        elif step % 3 == 1:
            await recorder.call(
                url, session, index, "note_set", {"key": f"k{step % 2}", "value": f"{tag}-{step}"}
            )
        else:
            await recorder.call(url, session, index, "note_get", {"key": f"k{step % 2}"})
        if step % 3 == 2 and recorder.plans:  # soon after client 0 creates it, and later
            await _read_status(url, session, index, recorder)
        if recorder.operations[-1].outcome != "ok":
            await asyncio.sleep(0.2)  # an outage: do not spin


async def _read_status(url: str, session: str | None, index: int, recorder: Recorder) -> None:
    """The newest plan's status, as any client of the subject may read it."""
    await recorder.call(url, session, index, "plan_status", {"plan_id": recorder.plans[-1]})


PLAN_SLEEP_MS = 2000
"""The plan's middle task: long enough that status reads see it running, not only settled."""


def _running_plan(plan_id: str) -> dict[str, Any]:
    """The load's three-task plan (tests/support/load.py) with its sleep made PLAN_SLEEP_MS."""
    plan: dict[str, Any] = _plan(plan_id)
    plan["tasks"] = [
        {**task, "parameters": {"ms": PLAN_SLEEP_MS}} if task["tool_name"] == "sleep" else task
        for task in plan["tasks"]
    ]
    return plan


async def _task(url: str, session: str | None, index: int, text: str, recorder: Recorder, step: int) -> None:
    """Every other echo of clients 1 to 7 is an MCP task: an echo, or (every other one) a short
    sleep that is usually still working at the first tasks/get."""
    if step % 12 == 3:
        await recorder.task(url, session, index, "echo", {"text": text})
    else:
        await recorder.task(url, session, index, "sleep", {"ms": 150 + index})


async def _echoer(url: str, index: int, tag: str, recorder: Recorder, stop: asyncio.Event, echo: str) -> None:
    """A client that only calls `echo` (no session), each time with a text of its own."""
    for step in itertools.count():
        if stop.is_set():
            return
        op = await recorder.call(url, None, index, echo, {"text": f"{tag}-c{index}-s{step}"})
        if op.outcome != "ok":
            await asyncio.sleep(0.2)  # an outage: do not spin


async def run_clients(
    url: str, tag: str, recorder: Recorder, stop: asyncio.Event, echo: str = "echo", echoers: int = 0
) -> None:
    """CLIENTS clients calling tools into `recorder` until `stop` is set; `echo` names the echo
    tool they call (an upstream server's, prefixed, in the upstream faults), and `echoers` more
    clients (numbered from CLIENTS) call only that."""
    await asyncio.gather(
        *(_client(url, index, tag, recorder, stop, echo) for index in range(CLIENTS)),
        *(_echoer(url, index, tag, recorder, stop, echo) for index in range(CLIENTS, CLIENTS + echoers)),
    )


def _wrong_answer(op: Operation) -> str | None:
    """Why an ok answer is not the true one (None when it is)."""
    result, arguments = op.result or {}, op.arguments
    expected: Mapping[str, Any] | None = {
        "echo": {"text": arguments.get("text")},
        UPSTREAM_ECHO: {"result": arguments.get("text")},
        "task:echo": {"text": arguments.get("text")},
        "task:sleep": {"slept_ms": arguments.get("ms")},
        "note_set": {"key": arguments.get("key")},
    }.get(op.tool)
    if expected is not None and result != expected:
        return f"{op.tool}({arguments}) answered {result}"
    if op.tool in {"note_get", "plan_status"} and any(result.get(k) != arguments[k] for k in arguments):
        return f"{op.tool}({arguments}) answered {result}"
    return None


def _unclear(op: Operation) -> str | None:
    """Why a JSON-RPC error does not say it may be retried and which service failed."""
    data = op.rpc_error.data if op.rpc_error is not None else None
    if op.rpc_error is None or (
        isinstance(data, dict) and data.get("retryable") is True and data.get("service")
    ):
        return None
    return f"client {op.client} {op.tool}: an unclear error {op.rpc_error.message!r} (data {data!r})"


def agent_problems(recorder: Recorder, budget: float) -> list[str]:
    """Everything the agents saw that they should not have: a wrong or foreign answer, a
    JSON-RPC error that does not say it is retryable and which service failed, a call answered
    after `budget` seconds or never, a non-linearizable note read."""
    problems = []
    for op in recorder.operations:
        if op.outcome == "ok" and (wrong := _wrong_answer(op)):
            problems.append(wrong)
        if unclear := _unclear(op):
            problems.append(unclear)
        if op.outcome == "timeout" or op.seconds > budget:
            problems.append(f"client {op.client} {op.tool} took {op.seconds:.1f}s ({op.outcome}: {op.error})")
    return problems + register_problems(recorder.operations)


def register_problems(operations: list[Operation]) -> list[str]:
    """A linearizability check of each client's notes as registers. A client is sequential and
    its session's commands are handled in order, so a read must return the value of the last
    write answered ok before it, or of a later write whose answer was lost (it may have been
    applied); before any ok write, also nothing. A value of another client is never allowed."""
    problems = []
    by_register: dict[tuple[int, str], list[Operation]] = {}
    for op in operations:
        if op.tool in {"note_set", "note_get"}:
            by_register.setdefault((op.client, str(op.arguments["key"])), []).append(op)
    for (client, key), ops in by_register.items():
        allowed: set[Any] = {None}
        for op in ops:
            if op.tool == "note_set":
                value = op.arguments["value"]
                allowed = {value} if op.outcome == "ok" else allowed | {value}
            elif op.outcome == "ok" and op.result is not None:
                seen = op.result.get("value") if op.result.get("found") else None
                if seen not in allowed:
                    problems.append(
                        f"client {client} read {key}={seen!r}, allowed {sorted(map(str, allowed))}"
                    )
                allowed = {seen}  # what it read is now the register's value
    return problems


def tally(recorder: Recorder) -> dict[str, int]:
    """attempted, answered (ok), errors (clear failures), timeouts."""
    outcomes = [op.outcome for op in recorder.operations]
    return {
        "attempted": len(outcomes),
        "answered": outcomes.count("ok"),
        "errors": outcomes.count("fail"),
        "timeouts": outcomes.count("timeout"),
    }


__all__ = ["CLIENTS", "OUTAGE", "Operation", "Recorder", "agent_problems", "run_clients", "tally"]
