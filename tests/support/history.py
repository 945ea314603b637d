"""Checks that a recorded history is exact after a disruption: read from the event store,
the Kafka topics and the Redis projections, never from the processes that wrote them.

- every command published on the commands topic was recorded, in exactly one append that
  holds its terminal event (one for a tool call);
- no command's events were appended twice, and every event of the tenant is in one append;
- every outbox row was published, and every stored event reached the events topic;
- the live session and plan views equal views rebuilt from the store.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.events import is_terminal
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.eventstore.tables import commands, events, outbox
from mcp_ledger.producers.kafka import PARTITIONS
from mcp_ledger.projections.plans.memory import MemoryPlanViewStore
from mcp_ledger.projections.plans.projector import PlanProjector
from mcp_ledger.projections.plans.redis import RedisPlanViewStore
from mcp_ledger.projections.plans.view import PlanView
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from mcp_ledger.projections.sessions.view import SessionView
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_sealer
from tests.support.processes import run_ledger

KAFKA_READ_SECONDS = 30.0


async def read_topic(bus_url: str, topic: str) -> list[Any]:
    """Every record of a topic, from the beginning to its current end (bounded)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bus_url.removeprefix("kafka://"), enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():
            return []
        # The bus makes every topic with PARTITIONS partitions before using it.
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        async with asyncio.timeout(KAFKA_READ_SECONDS):
            while [p for p in partitions if await consumer.position(p) < ends[p]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
        return records
    finally:
        await consumer.stop()


def _header(record: Any, name: str) -> str:
    return next((value.decode() for key, value in record.headers if key == name), "")


@dataclass
class History:
    """What the store holds for one tenant."""

    events: list[dict[str, Any]]
    appends: dict[str, tuple[str, int | None, int | None]]
    """command id -> (stream, first position, last position) from the idempotency record."""
    outbox_rows: int
    by_command: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            if event["command_id"]:
                grouped[event["command_id"]].append(event)
        self.by_command = dict(grouped)


async def load_history(store_url: str, tenant: str) -> History:
    """The tenant's events, their command records, and its outbox rows not yet published."""
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        events.c.position,
                        events.c.stream_id,
                        events.c.version,
                        events.c.event_type,
                        events.c.command_id,
                    )
                    .where(events.c.tenant == tenant)
                    .order_by(events.c.position)
                )
            ).mappings()
            found = [dict(row) for row in rows]
            ids = {row["command_id"] for row in found if row["command_id"]}
            records = (
                await conn.execute(
                    select(
                        commands.c.command_id,
                        commands.c.stream_id,
                        commands.c.first_position,
                        commands.c.last_position,
                    ).where(commands.c.command_id.in_(ids))
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
    appends = {row[0]: (row[1], row[2], row[3]) for row in records}
    return History(found, appends, int(pending))


def problems_in(history: History, published_commands: set[str], call_commands: set[str]) -> list[str]:
    """Everything that makes the history inexact (empty when it is exact)."""
    problems: list[str] = []
    for command_id in sorted(published_commands - set(history.appends)):
        problems.append(f"command {command_id} was published but has no recorded outcome")
    for command_id, mine in history.by_command.items():
        append = history.appends.get(command_id)
        if append is None:
            problems.append(f"events of command {command_id} have no command record")
            continue
        stream, first, last = append
        outside = [e["position"] for e in mine if not (first or 0) <= e["position"] <= (last or -1)]
        if outside or any(e["stream_id"] != stream for e in mine):
            problems.append(f"command {command_id} has events outside its one append: {outside}")
        kinds = Counter(e["event_type"] for e in mine)
        terminals = sum(count for kind, count in kinds.items() if is_terminal(kind))
        if command_id in published_commands and terminals < 1:
            problems.append(f"command {command_id} has no terminal event: {dict(kinds)}")
        if command_id in call_commands and (terminals != 1 or kinds["ToolCalled"] > 1):
            problems.append(f"tool call {command_id} has {terminals} outcomes: {dict(kinds)}")
    versions = Counter((e["stream_id"], e["version"]) for e in history.events)
    problems += [f"stream {s} has version {v} twice" for (s, v), n in versions.items() if n > 1]
    return problems


async def published_commands(bus_url: str, topic: str) -> tuple[set[str], set[str]]:
    """(every command id on the commands topic, those that are tool calls)."""
    every, calls = set(), set()
    for record in await read_topic(bus_url, topic):
        command_id = _header(record, "command_id")
        every.add(command_id)
        if json.loads(record.value)["command"]["kind"] == "CallTool":
            calls.add(command_id)
    return every, calls


async def unpublished_positions(bus_url: str, topic: str, history: History) -> list[int]:
    """Stored positions of the tenant that never reached the events topic."""
    seen = {json.loads(record.value)["position"] for record in await read_topic(bus_url, topic)}
    return [e["position"] for e in history.events if e["position"] not in seen]


async def views_converge(env: dict[str, str], tenant: str, rebuilt_prefix: str, seconds: float) -> None:
    """Rebuild the session views from the store under another prefix and wait (bounded) until
    the live views equal them.

    Raises:
        AssertionError: they still differ at the deadline (the message shows how).
    """
    run_ledger({**env, "LEDGER_STATE_PREFIX": rebuilt_prefix}, "projections", "rebuild")
    live = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=env["LEDGER_STATE_PREFIX"])
    rebuilt = RedisSessionViewStore.from_url(env["LEDGER_STATE"], prefix=rebuilt_prefix)
    try:
        expected = _by_id(await rebuilt.all_views(tenant))
        got: dict[str, SessionView] = {}
        try:
            async with asyncio.timeout(seconds):
                while (got := _by_id(await live.all_views(tenant))) != expected:
                    await asyncio.sleep(0.2)
        except TimeoutError:
            differ = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
            first = differ[0]
            raise AssertionError(
                f"live views differ from the rebuild for sessions {differ}; the first is "
                f"{got.get(first)!r} live and {expected.get(first)!r} rebuilt"
            ) from None
    finally:
        await rebuilt.clear()
        await live.close()
        await rebuilt.close()


def _by_id(views: list[SessionView]) -> dict[str, SessionView]:
    return {view.session_id: view for view in views}


async def plan_views_converge(env: dict[str, str], tenant: str, seconds: float) -> int:
    """Fold the plan views again from the store (in this process) and wait (bounded) until the
    live Redis plan views of the tenant equal them; returns how many plans were compared.

    Raises:
        AssertionError: they still differ at the deadline.
    """
    settings = Settings(store=env["LEDGER_STORE"], state=env["LEDGER_STATE"], kek=env["LEDGER_KEK"])
    sealer, keys = open_sealer(settings)
    store = await open_event_store(env["LEDGER_STORE"])
    rebuilt = MemoryPlanViewStore()
    try:
        await PlanProjector(rebuilt, opener=EventMapper(sealer).open).rebuild(store)
    finally:
        await store.close()
        await keys.close()
    expected = {v.plan_id: v for v in await rebuilt.all_views() if v.tenant == tenant}
    live = RedisPlanViewStore.from_url(env["LEDGER_STATE"], prefix=env["LEDGER_STATE_PREFIX"])
    got: dict[str, PlanView | None] = {}
    try:
        async with asyncio.timeout(seconds):
            while (got := {plan_id: await live.get(tenant, plan_id) for plan_id in expected}) != expected:
                await asyncio.sleep(0.2)
    except TimeoutError:
        differ = sorted(p for p in expected if got.get(p) != expected[p])
        raise AssertionError(f"live plan views differ from the store's for plans {differ}") from None
    finally:
        await live.close()
    return len(expected)
