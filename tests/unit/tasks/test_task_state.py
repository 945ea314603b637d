"""The MCP task fold: statuses, the first terminal event wins, expiry, sync-or-task."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_ledger.domain.events import DomainEvent, from_record, to_record
from mcp_ledger.domain.streams import new_task_id, parse_task_stream, task_stream
from mcp_ledger.domain.tasks.events import (
    McpTaskCancelled,
    McpTaskCompleted,
    McpTaskCreated,
    McpTaskFailed,
    McpTaskInputRequired,
    McpTaskStatusChanged,
)
from mcp_ledger.domain.tasks.state import (
    TaskRequiredError,
    TaskStreamError,
    fold,
    runs_as_task,
)


def created(ttl_ms: int | None = 60_000) -> McpTaskCreated:
    return McpTaskCreated(
        task_id="t1",
        tenant="acme",
        subject="alice",
        tool_name="sleep",
        command_id="c1",
        ttl_ms=ttl_ms,
        poll_interval_ms=500,
        created_at=100.0,
    )


COMPLETED = McpTaskCompleted(result={"content": []}, is_error=False, completed_at=105.0)
CANCELLED = McpTaskCancelled(reason="stop", cancelled_at=103.0)
FAILED = McpTaskFailed(code=-32603, message="boom", failed_at=104.0)


def test_a_new_task_is_working_with_no_result() -> None:
    state = fold([created()])
    assert state is not None
    assert (state.status, state.result, state.error) == ("working", None, None)


def test_an_empty_stream_is_no_task() -> None:
    assert fold([]) is None


def test_a_stream_that_does_not_start_with_creation_is_refused() -> None:
    with pytest.raises(TaskStreamError):
        fold([COMPLETED])


def test_a_completed_task_keeps_its_result() -> None:
    state = fold([created(), COMPLETED])
    assert state is not None
    assert (state.status, state.result, state.updated_at) == ("completed", {"content": []}, 105.0)


def test_a_failed_task_carries_a_json_rpc_error_and_no_result() -> None:
    state = fold([created(), FAILED])
    assert state is not None
    assert state.status == "failed"
    assert state.error == {"code": -32603, "message": "boom"}
    assert state.result is None


def test_a_result_after_cancellation_leaves_the_task_cancelled() -> None:
    state = fold([created(), CANCELLED, COMPLETED])
    assert state is not None
    assert (state.status, state.result) == ("cancelled", None)


def test_a_second_cancellation_is_not_counted() -> None:
    state = fold([created(), CANCELLED, CANCELLED])
    assert state is not None
    assert state.cancellations == 1


def test_input_required_then_working_again() -> None:
    waiting = McpTaskInputRequired(requests={"name": {"method": "elicitation/create"}}, changed_at=101.0)
    resumed = McpTaskStatusChanged(status="working", changed_at=102.0)
    state = fold([created(), waiting])
    assert state is not None
    assert state.status == "input_required"
    assert state.input_requests is not None
    state = fold([created(), waiting, resumed])
    assert state is not None
    assert state.status == "working"


def test_a_task_expires_when_its_ttl_from_creation_has_passed() -> None:
    state = fold([created(ttl_ms=2_000)])
    assert state is not None
    assert not state.expired(101.999)
    assert state.expired(102.0)


def test_a_task_without_ttl_never_expires() -> None:
    state = fold([created(ttl_ms=None)])
    assert state is not None
    assert not state.expired(1e12)


_EVENTS = st.lists(st.sampled_from([COMPLETED, CANCELLED, FAILED]), min_size=1, max_size=6)


@given(_EVENTS)
def test_the_first_terminal_event_decides_the_status(events: list[DomainEvent]) -> None:
    state = fold([created(), *events])
    assert state is not None
    first = events[0]
    expected = {McpTaskCompleted: "completed", McpTaskCancelled: "cancelled", McpTaskFailed: "failed"}
    assert state.status == expected[type(first)]


@given(_EVENTS)
def test_replaying_stored_records_rebuilds_the_same_state(events: list[DomainEvent]) -> None:
    stream = [created(), *events]
    replayed = [from_record(*to_record(event)) for event in stream]
    assert fold(replayed) == fold(stream)


def test_task_ids_are_long_random_and_scoped_by_owner() -> None:
    ids = {new_task_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(task_id) >= 32 for task_id in ids)
    task_id = new_task_id()
    mine, theirs = task_stream("acme", "alice", task_id), task_stream("acme", "bob", task_id)
    assert mine != theirs
    assert parse_task_stream(mine) == ("acme", mine.split(":")[3], task_id)
    assert parse_task_stream("tenant:acme:plan:x:y") is None


def test_only_task_supporting_tools_of_negotiating_clients_become_tasks() -> None:
    assert runs_as_task("optional", negotiated=True)
    assert runs_as_task("required", negotiated=True)
    assert not runs_as_task("optional", negotiated=False)
    assert not runs_as_task("forbidden", negotiated=True)


def test_a_task_required_tool_refuses_a_client_without_the_extension() -> None:
    with pytest.raises(TaskRequiredError):
        runs_as_task("required", negotiated=False)
