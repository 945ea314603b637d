"""Checks that a recorded history is exact after a disruption, read from the event store and
never from the processes that wrote it:

- the set checked is not empty (a load that published nothing proves nothing);
- every accepted command (published on the commands topic, or recorded by the store) has
  exactly one outcome: its terminal events, found by the command id every event names in its
  metadata, wherever they were appended; a tool call also has exactly one ToolCalled;
- a command's events lie inside its one recorded append;
- no task of a plan succeeded more than once, and every started plan ended exactly once;
- every MCP task (a McpTaskCreated stream) settled exactly once, and a task completed with
  the tool's result has a command with exactly one outcome.

What the topics and the views hold is compared by tests/support/convergence.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.events import is_terminal
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.tables import EVENT_COLUMNS, commands, events, outbox
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_sealer


@dataclass(frozen=True)
class Recorded:
    """One stored event, its personal fields opened."""

    position: int
    stream_id: str
    version: int
    event_type: str
    command_id: str | None
    """The command of the append that stored it (the idempotency record's key)."""
    names: str | None
    """The command its metadata names: the same, unless someone appended it another way."""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class History:
    """What the store holds for one tenant."""

    events: list[Recorded]
    appends: dict[str, tuple[str, int | None, int | None]]
    """command id -> (stream, first position, last position) from the idempotency record."""
    outbox_rows: int = 0


async def load_history(env: Mapping[str, str], tenant: str) -> History:
    """The tenant's events (opened with the deployment's KEK), their command records, and its
    outbox rows not yet published."""
    engine = create_async_engine(env["LEDGER_STORE"])
    try:
        async with engine.connect() as conn:
            query = select(*EVENT_COLUMNS, events.c.command_id).where(events.c.tenant == tenant)
            rows = (await conn.execute(query.order_by(events.c.position))).all()
            ids = {row.command_id for row in rows if row.command_id}
            records = (
                await conn.execute(
                    select(
                        commands.c.command_id,
                        commands.c.stream_id,
                        commands.c.first_position,
                        commands.c.last_position,
                    ).where(commands.c.tenant == tenant, commands.c.command_id.in_(ids))
                )
            ).all()
            pending = (
                await conn.execute(
                    select(func.count())
                    .select_from(outbox.join(events, outbox.c.position == events.c.position))
                    .where(events.c.tenant == tenant)
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    opened = await _opened([(StoredEvent(*row[:-1]), row.command_id) for row in rows], env)
    return History(opened, {row[0]: (row[1], row[2], row[3]) for row in records}, int(pending))


async def _opened(stored: list[tuple[StoredEvent, str | None]], env: Mapping[str, str]) -> list[Recorded]:
    settings = Settings(store=env["LEDGER_STORE"], state=env["LEDGER_STATE"], kek=env["LEDGER_KEK"])
    sealer, keys = open_sealer(settings)
    mapper = EventMapper(sealer)
    try:
        found = []
        for event, command_id in stored:
            data = (await mapper.open(event)).data
            names = event.metadata.get("command_id")
            found.append(
                Recorded(
                    event.position,
                    event.stream_id,
                    event.version,
                    event.event_type,
                    command_id,
                    names if isinstance(names, str) else None,
                    data,
                )
            )
        return found
    finally:
        await keys.close()


def outcomes(kinds: Counter[str]) -> int:
    """How many outcomes one command's event types amount to: each terminal event is one,
    except that create_plan with execute records its one outcome as PlanAccepted + PlanStarted.
    A register_server call's registry command (`<call>:registry`) records its one outcome as
    UpstreamServerRegistered; the registry events also name the call, whose outcome is its own
    ToolSucceeded."""
    terminal = sum(count for kind, count in kinds.items() if is_terminal(kind))
    plain = terminal - min(kinds["PlanAccepted"], kinds["PlanStarted"])
    return plain or kinds["UpstreamServerRegistered"]


def problems_in(history: History, published: set[str], calls: set[str]) -> list[str]:
    """Everything that makes the history inexact (empty when it is exact).

    `published` is every command id seen on the commands topic, `calls` those that are tool calls.
    """
    if not published:
        return ["no command was published: there is nothing to check"]
    return (
        _outcome_problems(history, published | set(history.appends), calls)
        + _append_problems(history)
        + _task_problems(history)
        + _plan_end_problems(history)
        + _mcp_task_problems(history)
    )


def _outcome_problems(history: History, accepted: set[str], calls: set[str]) -> list[str]:
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for event in history.events:
        for command_id in {event.names, event.command_id} - {None}:
            kinds[str(command_id)][event.event_type] += 1
    problems = []
    for command_id in sorted(accepted):
        found = kinds.get(command_id, Counter())
        if (count := outcomes(found)) != 1:
            problems.append(f"command {command_id} has {count} outcomes: {dict(found)}")
        if command_id in calls and found["ToolCalled"] != 1:
            problems.append(f"tool call {command_id} was called {found['ToolCalled']} times: {dict(found)}")
    return problems


def _append_problems(history: History) -> list[str]:
    by_command: dict[str, list[Recorded]] = defaultdict(list)
    for event in history.events:
        if event.command_id:
            by_command[event.command_id].append(event)
    problems = []
    for command_id, mine in sorted(by_command.items()):
        append = history.appends.get(command_id)
        if append is None:
            problems.append(f"events of command {command_id} have no command record")
            continue
        stream, first, last = append
        outside = [e.position for e in mine if not (first or 0) <= e.position <= (last or -1)]
        if outside or any(e.stream_id != stream for e in mine):
            problems.append(f"command {command_id} has events outside its one append: {outside}")
    return problems


def plan_successes(history: History) -> dict[str, Counter[str]]:
    """plan id -> how many times each of its tasks succeeded."""
    plan_of = _plan_ids(history.events)
    successes: dict[str, Counter[str]] = {plan_id: Counter() for plan_id in plan_of.values()}
    for event in history.events:
        if event.event_type == "TaskSucceeded" and event.stream_id in plan_of:
            successes[plan_of[event.stream_id]][str(event.data["task_id"])] += 1
    return successes


def plan_statuses(history: History) -> dict[str, list[str]]:
    """plan id -> the status of each PlanCompleted of its stream (exactly one when it ended once)."""
    plan_of = _plan_ids(history.events)
    statuses: dict[str, list[str]] = {plan_id: [] for plan_id in plan_of.values()}
    for event in history.events:
        if event.event_type == "PlanCompleted" and event.stream_id in plan_of:
            statuses[plan_of[event.stream_id]].append(str(event.data["status"]))
    return statuses


def _plan_ids(recorded: Iterable[Recorded]) -> dict[str, str]:
    """stream id -> plan id, for every stream that holds a PlanAccepted."""
    return {e.stream_id: str(e.data["plan_id"]) for e in recorded if e.event_type == "PlanAccepted"}


def _task_problems(history: History) -> list[str]:
    return [
        f"task {task} of plan {plan_id} succeeded {count} times"
        for plan_id, tasks in sorted(plan_successes(history).items())
        for task, count in sorted(tasks.items())
        if count > 1
    ]


def _plan_end_problems(history: History) -> list[str]:
    ends = Counter(e.stream_id for e in history.events if e.event_type == "PlanCompleted")
    started = sorted({e.stream_id for e in history.events if e.event_type == "PlanStarted"})
    return [f"plan stream {s} started but ended {ends[s]} times" for s in started if ends[s] != 1]


MCP_TASK_ENDS = frozenset({"McpTaskCompleted", "McpTaskFailed", "McpTaskCancelled"})


def unsettled_tasks(history: History) -> list[str]:
    """The ids of the MCP tasks whose stream holds no terminal event."""
    ended = {e.stream_id for e in history.events if e.event_type in MCP_TASK_ENDS}
    return [
        str(e.data["task_id"])
        for e in history.events
        if e.event_type == "McpTaskCreated" and e.stream_id not in ended
    ]


def _mcp_task_problems(history: History) -> list[str]:
    created = {e.stream_id: e for e in history.events if e.event_type == "McpTaskCreated"}
    ends: dict[str, list[Recorded]] = defaultdict(list)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for event in history.events:
        if event.stream_id in created and event.event_type in MCP_TASK_ENDS:
            ends[event.stream_id].append(event)
        elif event.names and event.stream_id not in created:
            kinds[event.names][event.event_type] += 1
    problems = []
    for stream_id, start in sorted(created.items()):
        mine, command_id = ends[stream_id], str(start.data["command_id"])
        if len(mine) != 1:
            problems.append(f"MCP task {start.data['task_id']} settled {len(mine)} times")
        elif mine[0].event_type == "McpTaskCompleted" and outcomes(kinds[command_id]) != 1:
            problems.append(
                f"MCP task {start.data['task_id']} completed; command {command_id}: {dict(kinds[command_id])}"
            )
    return problems
