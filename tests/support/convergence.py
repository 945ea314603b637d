"""What the topics and the views hold after a disruption, compared with the event store:

- every command id published on the commands topic (the set tests/support/history.py checks);
- every stored event reached the events topic;
- the live session and plan views equal views rebuilt from the store (bounded waits).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition  # type: ignore[import-untyped]

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.streams import plan_view_id
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.producers.kafka import PARTITIONS
from mcp_ledger.projections.plans.memory import MemoryPlanViewStore
from mcp_ledger.projections.plans.projector import PlanProjector
from mcp_ledger.projections.plans.redis import RedisPlanViewStore
from mcp_ledger.projections.plans.view import PlanView
from mcp_ledger.projections.sessions.redis import RedisSessionViewStore
from mcp_ledger.projections.sessions.view import SessionView
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_sealer
from tests.support.history import History
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
    return [e.position for e in history.events if e.position not in seen]


async def views_converge(env: dict[str, str], tenant: str, rebuilt_prefix: str, seconds: float) -> int:
    """Rebuild the session views from the store under another prefix and wait (bounded) until
    the live views equal them; returns how many sessions were compared.

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
        return len(expected)
    finally:
        await rebuilt.clear()
        await live.close()
        await rebuilt.close()


def _by_id(views: list[SessionView]) -> dict[str, SessionView]:
    return {view.session_id: view for view in views}


async def plan_views_converge(env: Mapping[str, str], tenant: str, seconds: float) -> int:
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
    expected = {
        plan_view_id(v.subject, v.plan_id): v for v in await rebuilt.all_views() if v.tenant == tenant
    }
    live = RedisPlanViewStore.from_url(env["LEDGER_STATE"], prefix=env["LEDGER_STATE_PREFIX"])
    got: dict[str, PlanView | None] = {}
    try:
        async with asyncio.timeout(seconds):
            while (got := {view_id: await live.get(tenant, view_id) for view_id in expected}) != expected:
                await asyncio.sleep(0.2)
    except TimeoutError:
        differ = sorted(p for p in expected if got.get(p) != expected[p])
        raise AssertionError(f"live plan views differ from the store's for plans {differ}") from None
    finally:
        await live.close()
    return len(expected)
