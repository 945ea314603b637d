"""A task's call parked for input, on SQLite with real keys and the in-process bus
(consumers/upstreams/relay/parking.py, mcp_api/tasks/inputs.py, the fold): the requests are
recorded sealed under minted keys, only the owner's answer on the reply topic resumes the
call, partial answers leave the rest open, the bounded wait and a taken-over command fail the
task once, and tasks/get fails a task its worker abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_ledger.consumers.tasks.log import StoredTaskLog, stored_task_log
from mcp_ledger.consumers.upstreams.relay.backchannel import BusBackChannel
from mcp_ledger.consumers.upstreams.relay.parking import TAKEN_OVER, TaskInputError, TaskInputs
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.streams import new_task_id, task_stream
from mcp_ledger.domain.tasks.events import McpTaskCreated, McpTaskInputAnswered, McpTaskInputRequired
from mcp_ledger.domain.tasks.state import fold
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine, open_event_store
from mcp_ledger.mcp_api.backchannel.replies import ReplyPublisher
from mcp_ledger.mcp_api.tasks.inputs import InvalidResponsesError, answerable
from mcp_ledger.mcp_api.tasks.outcomes import ABANDON_GRACE_S, abandoned
from mcp_ledger.producers.inprocess import InProcessBus
from mcp_ledger.producers.ports import Message

REPLIES = "ledger.replies"
SECRET = "delete the launch codes?"
ASK = {"method": "elicitation/create", "params": {"message": SECRET}}


@dataclass
class Stack:
    store: SqlEventStore
    tasks: StoredTaskLog
    replies: ReplyPublisher
    inputs: TaskInputs


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    store = await open_event_store(url)
    keys = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    sealer = RecordSealer(keys)
    bus = InProcessBus()
    channel = BusBackChannel(bus.publish, "ledger.progress", sealer)

    async def hear(message: Message) -> None:
        await channel.on_reply(message.headers, message.value)

    bus.subscribe(REPLIES, hear, group=None)
    await bus.start()
    tasks = stored_task_log(store, sealer)
    yield Stack(
        store, tasks, ReplyPublisher(bus.publish, REPLIES, sealer), TaskInputs(tasks, channel, wait_s=2.0)
    )
    await bus.stop()
    await keys.close()
    await store.close()


async def _command(tasks: StoredTaskLog, subject: str = "alice") -> CallTool:
    task_id = new_task_id()
    command = CallTool(tenant="t1", subject=subject, roles=("viewer",), tool_name="confirm", task_id=task_id)
    created = McpTaskCreated(
        task_id=task_id,
        tenant="t1",
        subject=subject,
        tool_name="confirm",
        command_id=command.command_id,
        ttl_ms=60_000,
        poll_interval_ms=500,
        created_at=1_000.0,
    )
    await tasks.append("t1", subject, task_id, 0, [created], command_id=command.command_id)
    return command


async def _waiting(tasks: StoredTaskLog, command: CallTool, count: int = 1) -> dict[str, Any]:
    assert command.task_id is not None
    async with asyncio.timeout(5):
        while True:
            state = fold((await tasks.load("t1", command.subject, command.task_id))[1])
            assert state is not None
            if state.status == "input_required" and len(state.input_requests or {}) >= count:
                assert isinstance(state.input_requests, dict)
                return state.input_requests
            await asyncio.sleep(0.02)


async def test_the_requests_are_recorded_sealed_under_minted_keys_and_the_owner_s_answer_resumes(
    stack: Stack,
) -> None:
    command = await _command(stack.tasks)
    asking = asyncio.create_task(stack.inputs.ask(command, {"confirm": ASK}))
    requests = await _waiting(stack.tasks, command)
    [(key, request)] = requests.items()
    assert key != "confirm"
    assert len(key) >= 24
    assert request == ASK
    assert command.task_id is not None
    stored = await stack.store.read_stream(task_stream("t1", "alice", command.task_id))
    assert SECRET not in str([event.data for event in stored])  # sealed
    await stack.replies.answer("t1", "mallory", {"id": key, "result": {"action": "decline"}})
    await stack.replies.answer("t2", "alice", {"id": key, "result": {"action": "decline"}})
    await asyncio.sleep(0.2)
    assert not asking.done()  # another subject's, another tenant's answer is not taken
    await stack.replies.answer("t1", "alice", {"id": key, "result": {"action": "accept"}})
    assert await asyncio.wait_for(asking, 5) == {"confirm": {"action": "accept"}}


async def test_a_batch_resumes_only_when_every_request_is_answered(stack: Stack) -> None:
    command = await _command(stack.tasks)
    asking = asyncio.create_task(stack.inputs.ask(command, {"a": ASK, "b": ASK}))
    first, second = await _waiting(stack.tasks, command, 2)
    await stack.replies.answer("t1", "alice", {"id": first, "result": {"action": "accept"}})
    await asyncio.sleep(0.2)
    assert not asking.done()
    await stack.replies.answer("t1", "alice", {"id": second, "result": {"action": "decline"}})
    answers = await asyncio.wait_for(asking, 5)
    assert sorted(answer["action"] for answer in answers.values()) == ["accept", "decline"]


async def test_the_wait_is_bounded_and_fails_the_task_once(stack: Stack) -> None:
    command = await _command(stack.tasks)
    with pytest.raises(TaskInputError, match="within 2s"):
        await stack.inputs.ask(command, {"confirm": ASK})
    assert command.task_id is not None
    state = fold((await stack.tasks.load("t1", "alice", command.task_id))[1])
    assert state is not None
    assert state.status == "failed"
    assert state.error is not None
    assert state.error["code"] == -32001
    assert "LEDGER_TASK_INPUT_WAIT_S" in str(state.error["message"])
    events = (await stack.tasks.load("t1", "alice", command.task_id))[1]
    assert [type(event).__name__ for event in events][1:] == ["McpTaskInputRequired", "McpTaskFailed"]


async def test_a_redelivered_command_of_a_parked_task_fails_it_instead_of_running_again(stack: Stack) -> None:
    command = await _command(stack.tasks)
    asking = asyncio.create_task(stack.inputs.ask(command, {"confirm": ASK}))
    await _waiting(stack.tasks, command)
    asking.cancel()  # the worker holding the call stopped
    await asyncio.gather(asking, return_exceptions=True)
    assert await stack.inputs.taken_over(command)
    assert command.task_id is not None
    state = fold((await stack.tasks.load("t1", "alice", command.task_id))[1])
    assert state is not None
    assert (state.status, state.error) == ("failed", {"code": -32001, "message": TAKEN_OVER})
    assert not await stack.inputs.taken_over(command)  # failed once


async def test_a_fresh_command_of_a_working_task_is_not_taken_over(stack: Stack) -> None:
    assert not await stack.inputs.taken_over(await _command(stack.tasks))


def _parked(*events: Any) -> Any:
    created = McpTaskCreated(
        task_id="t",
        tenant="t1",
        subject="alice",
        tool_name="confirm",
        command_id="c",
        ttl_ms=None,
        poll_interval_ms=500,
        created_at=1.0,
    )
    state = fold([created, *events])
    assert state is not None
    return state


def test_requests_of_several_rounds_add_up_and_answers_remove_them_until_working_again() -> None:
    one = McpTaskInputRequired(requests={"k1": ASK}, expires_at=50.0, changed_at=2.0)
    two = McpTaskInputRequired(requests={"k2": ASK}, expires_at=60.0, changed_at=3.0)
    state = _parked(one, two)
    assert (state.status, sorted(state.input_requests), state.input_deadline) == (
        "input_required",
        ["k1", "k2"],
        60,
    )
    state = _parked(one, two, McpTaskInputAnswered(keys=["k1"], changed_at=4.0))
    assert (state.status, list(state.input_requests)) == ("input_required", ["k2"])
    state = _parked(one, two, McpTaskInputAnswered(keys=["k2", "k1"], changed_at=4.0))
    assert (state.status, state.input_requests, state.input_deadline) == ("working", None, None)


def test_only_answers_to_open_requests_are_carried() -> None:
    state = _parked(McpTaskInputRequired(requests={"k1": ASK}, expires_at=50.0, changed_at=2.0))
    assert answerable(state, {"k1": {"action": "accept"}, "guess": {"action": "accept"}}) == {
        "k1": {"action": "accept"}
    }
    assert answerable(_parked(), {"k1": {"action": "accept"}}) == {}
    with pytest.raises(InvalidResponsesError):
        answerable(state, {"k1": "yes"})


def test_a_task_parked_past_its_deadline_and_the_grace_is_abandoned() -> None:
    state = _parked(McpTaskInputRequired(requests={"k1": ASK}, expires_at=50.0, changed_at=2.0))
    assert abandoned(state, 50.0 + ABANDON_GRACE_S - 0.1) is None
    failed = abandoned(state, 50.0 + ABANDON_GRACE_S)
    assert failed is not None
    assert failed.code == -32001
    assert "worker holding its call is gone" in failed.message
    assert abandoned(_parked(), 1e12) is None
