"""The agent-side checks of the fault suite can fail: a wrong or foreign answer, a hang, and a
stale or foreign note read are each reported; so are a plan status read going back or naming
another plan, an MCP task answered with another's result, one settled twice or never, and a
completed task whose command has no outcome (no services needed)."""

from __future__ import annotations

from typing import Any

from mcp_types import ErrorData

from tests.faults.linearizability import plan_verdict, verdict
from tests.faults.operations import Operation, Outcome, Recorder, agent_problems, register_problems
from tests.support.history import History, Recorded, problems_in, unsettled_tasks


def _op(
    tool: str, arguments: dict[str, Any], outcome: Outcome, result: dict[str, Any] | None, at: float
) -> Operation:
    return Operation(0, tool, arguments, at, at + 0.1, outcome, result)


def test_an_echo_answered_with_another_clients_text_is_reported() -> None:
    recorder = Recorder([_op("echo", {"text": "mine"}, "ok", {"text": "theirs"}, 0.0)])
    assert agent_problems(recorder, 5.0) == ["echo({'text': 'mine'}) answered {'text': 'theirs'}"]


def test_a_call_answered_after_its_budget_is_reported_as_a_hang() -> None:
    slow = Operation(3, "echo", {"text": "a"}, 0.0, 9.0, "ok", {"text": "a"})
    assert agent_problems(Recorder([slow]), 5.0) == ["client 3 echo took 9.0s (ok: )"]


def test_a_read_of_a_value_older_than_the_last_acknowledged_write_is_not_linearizable() -> None:
    ops = [
        _op("note_set", {"key": "k", "value": "v1"}, "ok", {"key": "k"}, 0.0),
        _op("note_set", {"key": "k", "value": "v2"}, "ok", {"key": "k"}, 1.0),
        _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "v1"}, 2.0),
    ]
    assert register_problems(ops) == ["client 0 read k='v1', allowed ['v2']"]


def test_a_read_may_see_a_write_whose_answer_was_lost_but_then_keeps_it() -> None:
    ops = [
        _op("note_set", {"key": "k", "value": "v1"}, "ok", {"key": "k"}, 0.0),
        _op("note_set", {"key": "k", "value": "v2"}, "timeout", None, 1.0),
        _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "v2"}, 2.0),
        _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "v1"}, 3.0),
    ]
    assert register_problems(ops) == ["client 0 read k='v1', allowed ['v2']"]


def test_a_read_of_nothing_after_an_acknowledged_write_is_reported() -> None:
    ops = [
        _op("note_set", {"key": "k", "value": "v1"}, "ok", {"key": "k"}, 0.0),
        _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": False}, 1.0),
    ]
    assert register_problems(ops) == ["client 0 read k=None, allowed ['v1']"]


def test_a_generic_internal_error_is_reported_as_unclear() -> None:
    generic = Operation(1, "echo", {"text": "a"}, 0.0, 0.1, "fail", None, "MCPError: Internal server error")
    generic.rpc_error = ErrorData(code=-32603, message="Internal server error")
    clear = Operation(2, "echo", {"text": "b"}, 0.0, 0.1, "fail", None, "MCPError: unavailable")
    clear.rpc_error = ErrorData(
        code=-32603, message="unavailable", data={"retryable": True, "service": "database"}
    )
    assert agent_problems(Recorder([generic, clear]), 5.0) == [
        "client 1 echo: an unclear error 'Internal server error' (data None)"
    ]


def test_porcupine_finds_a_read_older_than_the_last_acknowledged_write_illegal() -> None:
    ops = [
        _op("note_set", {"key": "k", "value": "v1"}, "ok", {"key": "k"}, 0.0),
        _op("note_set", {"key": "k", "value": "v2"}, "ok", {"key": "k"}, 1.0),
        _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "v1"}, 2.0),
    ]
    assert verdict(ops) == "Illegal"
    assert verdict(ops[:2]) == "Ok"


def test_porcupine_allows_a_write_whose_answer_was_lost_to_be_seen_but_then_kept() -> None:
    ops = [
        _op("note_set", {"key": "k", "value": "v1"}, "ok", {"key": "k"}, 0.0),
        _op("note_set", {"key": "k", "value": "v2"}, "timeout", None, 1.0),
        _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "v2"}, 2.0),
    ]
    assert verdict(ops) == "Ok"
    later = _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "v1"}, 3.0)
    assert verdict([*ops, later]) == "Illegal"


def test_porcupine_finds_a_foreign_value_and_a_lost_note_illegal() -> None:
    foreign = _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": True, "value": "theirs"}, 0.0)
    wrote = _op("note_set", {"key": "k", "value": "v1"}, "ok", {"key": "k"}, 0.0)
    vanished = _op("note_get", {"key": "k"}, "ok", {"key": "k", "found": False}, 1.0)
    assert verdict([foreign]) == "Illegal"
    assert verdict([wrote, vanished]) == "Illegal"


def test_a_task_answered_with_another_clients_echo_is_reported() -> None:
    mine = _op("task:echo", {"text": "mine"}, "ok", {"text": "theirs"}, 0.0)
    slept = _op("task:sleep", {"ms": 150}, "ok", {"slept_ms": 150}, 1.0)
    assert agent_problems(Recorder([mine, slept]), 5.0) == [
        "task:echo({'text': 'mine'}) answered {'text': 'theirs'}"
    ]


def _task_history(ends: list[str], outcome: str | None = "ToolSucceeded") -> History:
    """One MCP task of command c1 with `ends` recorded on its stream, and c1's own outcome."""
    stream, meta = "tenant:t:task:o:t1", {"task_id": "t1", "command_id": "c1"}
    recorded = [Recorded(1, stream, 1, "McpTaskCreated", None, "c1", meta)]
    recorded += [Recorded(2 + i, stream, 2 + i, end, None, "c1") for i, end in enumerate(ends)]
    if outcome is not None:
        recorded.append(Recorded(9, "tenant:t:session:s", 1, outcome, "c1", "c1"))
    return History(recorded, {"c1": ("tenant:t:session:s", 9, 9)} if outcome else {})


def test_a_task_settled_twice_or_never_is_reported_and_a_completed_one_needs_its_commands_outcome() -> None:
    assert problems_in(_task_history(["McpTaskCompleted"]), {"c1"}, set()) == []
    twice = problems_in(_task_history(["McpTaskCompleted", "McpTaskFailed"]), {"c1"}, set())
    assert twice == ["MCP task t1 settled 2 times"]
    never = _task_history([])
    assert "MCP task t1 settled 0 times" in problems_in(never, {"c1"}, set())
    assert unsettled_tasks(never) == ["t1"]
    orphan = problems_in(_task_history(["McpTaskCompleted"], outcome=None), {"c0"}, set())
    assert "MCP task t1 completed; command c1: {}" in orphan


def _status(client: int, status: str, at: float, plan_id: str = "p1") -> Operation:
    result = {"plan_id": plan_id, "status": status}
    return Operation(client, "plan_status", {"plan_id": plan_id}, at, at + 0.1, "ok", result)


def _created(plan_id: str = "p1") -> Operation:
    return _op("create_plan", {"plan": {"plan_id": plan_id}}, "ok", {"status": "running"}, 0.0)


def test_porcupine_accepts_plan_statuses_that_only_move_forward_across_clients() -> None:
    ops = [_created(), _status(1, "accepted", 1.0), _status(2, "running", 2.0), _status(3, "succeeded", 3.0)]
    assert plan_verdict([*ops, _status(4, "succeeded", 4.0)]) == "Ok"
    concurrent = [_status(5, "running", 3.05)]  # overlaps the succeeded read: either order
    assert plan_verdict([*ops, *concurrent]) == "Ok"


def test_porcupine_finds_a_plan_status_going_back_or_settling_twice_illegal() -> None:
    ops = [_created(), _status(1, "running", 1.0), _status(2, "succeeded", 2.0)]
    assert plan_verdict([*ops, _status(3, "running", 3.0)]) == "Illegal"  # after another's settled read
    assert plan_verdict([*ops, _status(3, "failed", 3.0)]) == "Illegal"  # a second terminal status
    assert plan_verdict([_created(), _status(1, "running", 1.0), _status(1, "accepted", 2.0)]) == "Illegal"
    other_plan = [*ops, _created("p2"), _status(3, "accepted", 3.0, "p2")]
    assert plan_verdict(other_plan) == "Ok"  # one register per plan


def test_a_plan_status_answered_for_another_plan_is_reported() -> None:
    foreign = Operation(
        1, "plan_status", {"plan_id": "p1"}, 0.0, 0.1, "ok", {"plan_id": "p2", "status": "running"}
    )
    assert agent_problems(Recorder([foreign]), 5.0) == [
        "plan_status({'plan_id': 'p1'}) answered {'plan_id': 'p2', 'status': 'running'}"
    ]
