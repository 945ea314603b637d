"""The pure decision step: simulated runs with random outcomes keep the plan's invariants,
and replaying what was decided rebuilds the same state."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_ledger.domain.events import DomainEvent, from_record, to_record
from mcp_ledger.domain.plans.decisions import (
    TaskResult,
    compensation_outcome_events,
    retry_delay,
    step,
    task_outcome_events,
)
from mcp_ledger.domain.plans.events import (
    PlanAccepted,
    PlanStarted,
    PlanStepGranted,
    TaskStarted,
    TaskSucceeded,
)
from mcp_ledger.domain.plans.model import RetryPolicy, normalise_plan, plan_hash
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.domain.plans.validation import with_derived_dependencies


@st.composite
def _plans(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 20))
    tasks = []
    for index in range(size):
        deps = draw(st.sets(st.integers(0, index - 1), max_size=3)) if index else set()
        tasks.append(
            {
                "id": f"t{index}",
                "tool_name": "echo",
                "dependencies": [f"t{d}" for d in sorted(deps)],
                "on_error": draw(st.sampled_from(["fail", "continue", "compensate"])),
                "retry": {"max_attempts": draw(st.integers(1, 3)), "initial": 1.0},
                "compensate": {"tool_name": "echo"} if draw(st.booleans()) else None,
            }
        )
    mode = draw(st.sampled_from(["batch", "reactive"]))
    return {"plan_id": "p", "tasks": tasks, "max_parallel_tasks": draw(st.integers(1, 4)), "mode": mode}


def _begin(raw: dict[str, Any]) -> tuple[PlanState, list[DomainEvent]]:
    plan = with_derived_dependencies(normalise_plan(raw))
    events: list[DomainEvent] = [
        PlanAccepted(
            command_id="c",
            plan_id="p",
            tenant="t",
            subject="s",
            roles=[],
            plan=plan.model_dump(mode="json"),
            plan_hash=plan_hash(plan),
            seed=7,
            accepted_at=0.0,
        ),
        PlanStarted(command_id="c", plan_id="p", started_at=0.0),
    ]
    return PlanState.replay("s", events), events


@settings(max_examples=50, deadline=None)
@given(_plans(), st.randoms(use_true_random=False))
def test_a_simulated_run_respects_order_and_parallelism_and_replays_to_the_same_state(
    raw: dict[str, Any], rng: Any
) -> None:
    state, log = _begin(raw)
    assert state.plan is not None
    now, succeeded = 0.0, set[str]()
    for _ in range(500):
        new = step(state, now)
        log += new
        for event in new:
            if isinstance(event, TaskStarted):
                assert set(state.plan.task(event.task_id).dependencies) <= succeeded
        if state.plan.mode == "reactive":
            assert state.first_starts <= state.steps_granted
        assert len(state.running) <= state.plan.max_parallel_tasks
        if state.completed:
            break
        if state.paused:
            assert not state.running
            grant = PlanStepGranted(command_id="g", plan_id="p", granted_at=now)
            state.apply(grant)
            log.append(grant)
            continue
        if not state.running and state.compensating is None:
            now += 10.0  # only retries wait: let time pass
            continue
        ok = rng.random() < 0.7
        result = TaskResult(output={"n": 1}) if ok else TaskResult(error_code="boom", message="no")
        if not state.running:
            assert state.compensating is not None
            outcome = compensation_outcome_events(state, state.compensating, result)
        else:
            task_id = rng.choice(sorted(state.running))
            outcome = task_outcome_events(state, task_id, state.tasks[task_id].attempt, result, now)
        for event in outcome:
            state.apply(event)
            if isinstance(event, TaskSucceeded):
                succeeded.add(event.task_id)
        log += outcome
    else:
        raise AssertionError("the plan never ended")

    assert state.completion in {
        "succeeded",
        "completed_with_errors",
        "failed",
        "compensated",
        "compensation_failed",
    }
    records = [to_record(event) for event in log]
    replayed = PlanState.replay("s", (from_record(*record) for record in records))
    assert replayed.completion == state.completion
    assert {k: (t.status, t.attempt, t.output) for k, t in replayed.tasks.items()} == {
        k: (t.status, t.attempt, t.output) for k, t in state.tasks.items()
    }


@given(st.integers(1, 12), st.integers(0, 2**63 - 1))
def test_retry_delays_are_deterministic_jittered_and_capped(attempt: int, seed: int) -> None:
    policy = RetryPolicy(max_attempts=20, initial=0.1, max=2.0)
    delay = retry_delay(policy, attempt, seed, "a")
    base = min(0.1 * 2 ** (attempt - 1), 2.0)
    assert base / 2 <= delay <= base
    assert delay == retry_delay(policy, attempt, seed, "a")


def test_a_plan_accepted_but_not_started_does_nothing() -> None:
    state, _ = _begin({"plan_id": "p", "tasks": [{"id": "a", "tool_name": "echo"}]})
    state.started_at = None
    assert step(state, 0.0) == []
