"""The history checker of the reliability tests (tests/support/history.py) can fail: a real
history recorded by the command handlers and the plan executor is exact, and the same history
with an outcome recorded twice, an accepted command never recorded, a task succeeding twice, a
plan ending twice or nothing published at all is reported, each for what it is."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.mapping import to_new_events
from mcp_ledger.consumers.plans.stream import plan_records
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.events import ToolCalled, ToolSucceeded
from mcp_ledger.domain.plans.events import PlanCompleted, TaskSucceeded
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore
from tests.support.history import History, load_history, plan_statuses, plan_successes, problems_in
from tests.support.plans import Recorder, accept, executor, tool

KEK = base64.b64encode(b"k" * 32).decode()
CATALOG = {"step": tool("step")}
PLAN = {
    "plan_id": "p1",
    "tasks": [
        {"id": "a", "tool_name": "step", "parameters": {}},
        {"id": "b", "tool_name": "step", "parameters": {}, "dependencies": ["a"]},
    ],
}


async def _ignore(_events: Sequence[StoredEvent]) -> None:
    return None


class Run:
    """A small real history: two tool calls in a session and a two-task plan run to its end."""

    def __init__(self, store: SqlEventStore, tmp_path: Path) -> None:
        self.store = store
        self.env = {
            "LEDGER_STORE": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",  # the `store` fixture's
            "LEDGER_STATE": "memory://",
            "LEDGER_KEK": KEK,
        }
        self.session = new_session_id()
        self.calls: list[CallTool] = []
        self.plan_stream = ""
        self.accepted_by = ""

    async def record(self) -> None:
        handler = CommandHandler(self.store, builtin_catalog(), BUILTIN_RUNNERS, _ignore)
        for name, arguments in (("session_open", {}), ("echo", {"text": "hi"})):
            call = CallTool(
                tenant="t", subject="someone", session_id=self.session, tool_name=name, arguments=arguments
            )
            await handler.handle(call)
            self.calls.append(call)
        self.plan_stream = await accept(self.store, CATALOG, PLAN, tenant="t")
        assert await executor(self.store, CATALOG, Recorder().runners(["step"])).run(self.plan_stream)
        self.accepted_by = str((await self.store.read_stream(self.plan_stream))[0].metadata["command_id"])

    async def history(self) -> History:
        return await load_history(self.env, "t")

    @property
    def published(self) -> set[str]:
        return self.call_ids | {self.accepted_by}

    @property
    def call_ids(self) -> set[str]:
        return {call.command_id for call in self.calls}

    async def append_to_plan(self, *events: TaskSucceeded | PlanCompleted) -> None:
        """What a second executor that ignored the recorded successes would append."""
        version = len(await self.store.read_stream(self.plan_stream))
        records = plan_records(list(events), tenant="t", subject="someone", command_id=self.accepted_by)
        await self.store.append(self.plan_stream, version, records)


async def recorded(store: SqlEventStore, tmp_path: Path) -> Run:
    run = Run(store, tmp_path)
    await run.record()
    return run


async def test_a_history_the_handlers_recorded_is_exact(store: SqlEventStore, tmp_path: Path) -> None:
    run = await recorded(store, tmp_path)
    history = await run.history()
    assert len(run.published) == 3  # two calls and the plan's AcceptPlan
    assert problems_in(history, run.published, run.call_ids) == []
    assert plan_statuses(history) == {"p1": ["succeeded"]}
    assert plan_successes(history) == {"p1": {"a": 1, "b": 1}}


async def test_an_outcome_recorded_twice_outside_the_idempotency_record_is_reported(
    store: SqlEventStore, tmp_path: Path
) -> None:
    run = await recorded(store, tmp_path)
    echo = run.calls[1]
    again = [
        ToolCalled(command_id=echo.command_id, tool_name="echo", arguments={"text": "hi"}),
        ToolSucceeded(command_id=echo.command_id, tool_name="echo", content=[]),
    ]
    stream = echo.stream_id
    await store.append(stream, len(await store.read_stream(stream)), to_new_events(echo, again))

    problems = problems_in(await run.history(), run.published, run.call_ids)

    assert f"command {echo.command_id} has 2 outcomes: {{'ToolCalled': 2, 'ToolSucceeded': 2}}" in problems
    assert any(p.startswith(f"tool call {echo.command_id} was called 2 times") for p in problems)
    assert len(problems) == 2


async def test_an_accepted_command_with_no_recorded_outcome_is_reported(
    store: SqlEventStore, tmp_path: Path
) -> None:
    run = await recorded(store, tmp_path)
    lost = CallTool(tenant="t", subject="someone", session_id=run.session, tool_name="echo")

    problems = problems_in(await run.history(), run.published | {lost.command_id}, run.call_ids)

    assert problems == [f"command {lost.command_id} has 0 outcomes: {{}}"]


async def test_a_task_that_succeeded_twice_and_a_plan_that_ended_twice_are_reported(
    store: SqlEventStore, tmp_path: Path
) -> None:
    run = await recorded(store, tmp_path)
    await run.append_to_plan(
        TaskSucceeded(task_id="a", attempt=1, output={}, finished_at=1.0),
        PlanCompleted(plan_id="p1", status="succeeded", finished_at=2.0),
    )

    problems = problems_in(await run.history(), run.published, run.call_ids)

    assert problems == [
        "task a of plan p1 succeeded 2 times",
        f"plan stream {run.plan_stream} started but ended 2 times",
    ]


async def test_a_load_that_published_nothing_proves_nothing(store: SqlEventStore, tmp_path: Path) -> None:
    run = await recorded(store, tmp_path)
    assert problems_in(await run.history(), set(), set()) == [
        "no command was published: there is nothing to check"
    ]
