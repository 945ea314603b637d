"""A store outage while a task starts never leaves it working for ever (mcp_api/tasks/service.py),
on SQLite with real keys and the in-process bus; the outage is the store raising what
SQLAlchemy raises for a dropped connection.

Nobody but the replica that starts a task can end one whose command never reached the bus:
the command is sealed before the task exists (a key lookup that fails fails the call, and no
task is left), and a task whose command could not be published records its failure through
the outage, trying again until the store answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy.exc

from mcp_ledger.consumers.tasks.log import StoredTaskLog, stored_task_log
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.ports import DataKey
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.mcp_api.tasks.service import TaskService
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.ports import Message

COMMANDS = "ledger.commands"
ALICE = Identity("t1", "alice", ("viewer",))


def _outage() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT", {}, ConnectionResetError("reset by peer"))


class FlakyKeys(SqlKeyStore):
    """The real key store, unreachable while `down`."""

    down = False

    async def active_key(self, tenant: str, subject: str) -> DataKey:
        if self.down:
            raise _outage()
        return await super().active_key(tenant, subject)


@dataclass
class FlakyLog:
    """The real task log whose next `failures` appends after the first fail as in an outage."""

    inner: StoredTaskLog
    failures: int = 0
    appends: int = 0
    lose_first_ack: bool = False

    async def load(self, tenant: str, subject: str, task_id: str) -> tuple[int, list[DomainEvent]]:
        return await self.inner.load(tenant, subject, task_id)

    async def append(
        self,
        tenant: str,
        subject: str,
        task_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        *,
        command_id: str,
    ) -> None:
        self.appends += 1
        if self.appends > 1 and self.failures > 0:
            self.failures -= 1
            raise _outage()
        await self.inner.append(tenant, subject, task_id, expected_version, events, command_id=command_id)
        if self.appends == 1 and self.lose_first_ack:
            raise _outage()  # written, and the caller never hears it

    async def outcome(self, tenant: str, subject: str, command_id: str) -> dict[str, object] | None:
        return await self.inner.outcome(tenant, subject, command_id)


@dataclass
class Stack:
    keys: FlakyKeys
    log: FlakyLog
    bus: InProcessBus
    service: TaskService
    published: list[Message]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    store = await open_event_store(url)
    keys = FlakyKeys(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    sealer = RecordSealer(keys)
    bus, published = InProcessBus(), []

    async def hear(message: Message) -> None:
        published.append(message)

    bus.subscribe(COMMANDS, hear, group="workers")
    await bus.start()
    log = FlakyLog(stored_task_log(store, sealer))
    gateway = CommandGateway(bus, COMMANDS, timeout=5.0, sealer=sealer)
    service = TaskService(log, gateway, ttl_ms=60_000, settle_s=10.0)
    yield Stack(keys, log, bus, service, published)
    await service.close()
    await bus.stop()
    await keys.close()
    await store.close()


def _call() -> CallTool:
    return CallTool(tenant="t1", subject="alice", roles=("viewer",), tool_name="echo", arguments={"x": 1})


async def test_a_key_store_outage_fails_the_call_and_leaves_no_task(stack: Stack) -> None:
    stack.keys.down = True
    with pytest.raises(sqlalchemy.exc.OperationalError):
        await stack.service.start(ALICE, _call())
    assert stack.log.appends == 0, "a task was created for a command that was never sent"
    await asyncio.sleep(0.1)
    assert stack.published == []


async def test_a_task_whose_command_was_not_sent_records_its_failure_through_an_outage(
    stack: Stack,
) -> None:
    await stack.bus.stop()  # the command cannot be published ...
    stack.log.failures = 2  # ... and recording that fails twice before the store answers again
    state = await stack.service.start(ALICE, _call())
    for _ in range(100):
        ended = await stack.service.get(ALICE, state.task_id)
        if ended.terminal:
            break
        await asyncio.sleep(0.1)
    assert ended.status == "failed", ended
    assert stack.log.failures == 0
    assert stack.log.appends == 4


async def test_a_task_whose_creation_was_written_but_not_acknowledged_ends_failed(stack: Stack) -> None:
    stack.log.lose_first_ack = True
    with pytest.raises(sqlalchemy.exc.OperationalError):
        await stack.service.start(ALICE, _call())
    assert stack.log.appends == 1
    task_id = next(iter(stack.service._running))  # the agent never learnt it; the audit would
    for _ in range(50):
        if not stack.service._running:
            break
        await asyncio.sleep(0.1)
    ended = await stack.service.get(ALICE, task_id)
    assert ended.status == "failed", ended
    assert "not confirmed" in str(ended.error)
    assert "reset by peer" not in str(ended.error), "the outage's text reached the task"
    await asyncio.sleep(0.1)
    assert stack.published == [], "the command of a task the agent was told failed was sent"
