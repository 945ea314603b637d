"""The plan model: both input forms, references, the condition grammar and validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_ledger.checks.arguments import plan_parameter_problems
from mcp_ledger.domain.plans.conditions import ConditionError, condition_holds, parse_condition
from mcp_ledger.domain.plans.model import PlanFormError, normalise_plan, plan_hash
from mcp_ledger.domain.plans.refs import PlanReferenceError, Reference, as_reference, resolve, resolve_pointer
from mcp_ledger.domain.plans.validation import (
    find_cycle,
    plan_problems,
    topological_order,
    with_derived_dependencies,
)
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog

CATALOG = builtin_catalog()


def _plan(*tasks: dict[str, Any], **extra: Any) -> Any:
    return with_derived_dependencies(normalise_plan({"plan_id": "p", "tasks": list(tasks), **extra}))


def test_the_briefs_json_form_with_error_handling_and_retry_is_accepted() -> None:
    plan = normalise_plan(
        {
            "plan_id": "p1",
            "tasks": [
                {
                    "task_id": "a",
                    "tool_name": "echo",
                    "description": "say hi",
                    "parameters": {"text": "hi"},
                    "dependencies": [],
                    "error_handling": {"on_error": "continue"},
                    "retry": {"max_attempts": 3, "backoff": "exponential", "initial": 0.1, "max": 2},
                    "timeout": 5,
                }
            ],
        }
    )
    task = plan.task("a")
    assert (task.on_error, task.retry.max_attempts, task.timeout) == ("continue", 3, 5)


def test_the_yaml_form_becomes_the_same_model_with_edges_conditions_and_compensation() -> None:
    plan = normalise_plan(
        {
            "plan_id": "g",
            "nodes": [
                {"id": "a", "tool": "echo", "params": {"text": "x"}, "parallel_group": "first"},
                {"id": "b", "tool": "echo", "params": {"text": "y"}},
            ],
            "edges": [{"from": "a", "to": "b", "condition": "a.status == 'succeeded'"}],
            "error_handlers": [{"node": "b", "compensate": {"tool": "echo", "params": {"text": "undo"}}}],
        }
    )
    b = plan.task("b")
    assert b.dependencies == ("a",)
    assert b.condition == "a.status == 'succeeded'"
    assert b.on_error == "compensate"
    assert b.compensate is not None
    assert b.compensate.parameters == {"text": "undo"}
    assert plan.task("a").parallel_group == "first"


def test_a_malformed_plan_gets_readable_problems() -> None:
    with pytest.raises(PlanFormError) as caught:
        normalise_plan({"plan_id": "p", "tasks": [{"id": "1bad", "tool_name": ""}]})
    assert "tasks/0/id" in str(caught.value)


def test_the_hash_is_stable_and_changes_with_any_parameter() -> None:
    first = _plan({"id": "a", "tool_name": "echo", "parameters": {"text": "x"}})
    again = _plan({"id": "a", "tool_name": "echo", "parameters": {"text": "x"}})
    other = _plan({"id": "a", "tool_name": "echo", "parameters": {"text": "y"}})
    assert plan_hash(first) == plan_hash(again) != plan_hash(other)


def test_both_reference_spellings_resolve_through_rfc_6901_pointers() -> None:
    outputs = {"A": {"x": [{"a/b": 1, "m~n": 2}]}}
    assert as_reference("${A.output.x.0}") == Reference("A", "/x/0")
    assert resolve({"$ref": "tasks.A.output", "path": "/x/0/a~1b"}, outputs) == 1
    assert resolve(["${A.output.x.0.m~n}"], outputs) == [2]
    assert resolve_pointer(outputs, "") == outputs


def test_text_around_a_reference_is_refused_not_interpolated() -> None:
    with pytest.raises(PlanReferenceError, match="whole values"):
        as_reference("hello ${A.output.x}")


def test_a_pointer_that_finds_nothing_is_an_error() -> None:
    with pytest.raises(PlanReferenceError):
        resolve("${A.output.missing}", {"A": {"x": 1}})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("a.output.n > 2 and a.status == 'succeeded'", True),
        ("not (a.output.n < 10)", False),
        ('a.output.tags.0 == "red" or false', True),
        ("'red' in a.output.tags", True),
        ("a.output.n == '3'", False),
        ("a.output.missing.deeper == null", True),
        ("a.output.n >= 3.0", True),
    ],
)
def test_conditions_are_evaluated_by_the_tiny_grammar(condition: str, expected: bool) -> None:
    tasks = {"a": {"status": "succeeded", "output": {"n": 3, "tags": ["red"]}}}
    assert condition_holds(condition, tasks) is expected


@pytest.mark.parametrize(
    "condition", ["__import__('os').system('x')", "a.output.n +", "a.secret == 1", "a.output.n == 1 1", ""]
)
def test_anything_outside_the_grammar_is_refused(condition: str) -> None:
    with pytest.raises(ConditionError):
        parse_condition(condition)


def test_references_and_conditions_become_dependencies() -> None:
    plan = _plan(
        {"id": "a", "tool_name": "echo", "parameters": {"text": "x"}},
        {"id": "b", "tool_name": "echo", "parameters": {"text": "${a.output.text}"}},
        {"id": "c", "tool_name": "echo", "parameters": {"text": "z"}, "condition": "b.status == 'succeeded'"},
    )
    assert plan.task("b").dependencies == ("a",)
    assert plan.task("c").dependencies == ("b",)
    assert plan_problems(plan, CATALOG, ["viewer"]) == []


def test_a_cycle_is_reported_as_a_path() -> None:
    plan = _plan(
        {"id": "a", "tool_name": "echo", "parameters": {"text": "${c.output.text}"}},
        {"id": "b", "tool_name": "echo", "parameters": {"text": "${a.output.text}"}},
        {"id": "c", "tool_name": "echo", "parameters": {"text": "${b.output.text}"}},
    )
    problems = plan_problems(plan, CATALOG, ["admin"])
    assert problems == ["dependency cycle: a -> c -> b -> a"]


def test_unknown_tools_tasks_and_forbidden_tools_are_all_reported() -> None:
    catalog = {
        **CATALOG,
        "wipe": ToolSpec(name="wipe", title="w", description="w", input_schema={}, minimum_role="admin"),
    }
    plan = _plan(
        {"id": "a", "tool_name": "nope"},
        {"id": "b", "tool_name": "wipe", "dependencies": ["ghost"]},
        {"id": "c", "tool_name": "session_open"},
    )
    problems = plan_problems(plan, catalog, ["viewer"])
    assert "task a: unknown tool 'nope'" in problems
    assert "task b: wipe: this tool needs the role 'admin' or higher" in problems
    assert "task b: depends on or reads unknown task 'ghost'" in problems
    assert "task c: session_open cannot run inside a plan" in problems


def test_parameters_are_checked_against_input_schemas_where_known() -> None:
    plan = _plan(
        {"id": "a", "tool_name": "sleep", "parameters": {"ms": "soon"}},
        {"id": "b", "tool_name": "echo", "parameters": {}},
        {"id": "c", "tool_name": "sleep", "parameters": {"ms": "${b.output.text}"}},
        {"id": "d", "tool_name": "echo", "parameters": {"text": "${b.output.text}"}},
    )
    problems = plan_parameter_problems(plan, CATALOG)
    assert problems == [
        "task a: invalid arguments at ms: 'soon' is not of type 'integer'",
        "task b: invalid arguments at (root): 'text' is a required property",
        "task c: parameter 'ms' wants integer but its reference gives string",
    ]


@st.composite
def _dags(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(1, 25))
    tasks = []
    for index in range(size):
        deps = draw(st.sets(st.integers(0, index - 1), max_size=4)) if index else set()
        tasks.append(
            {"id": f"t{index}", "tool_name": "echo", "dependencies": [f"t{d}" for d in sorted(deps)]}
        )
    order = draw(st.permutations(tasks))
    return list(order)


@given(_dags())
def test_topological_order_puts_every_task_after_its_dependencies(tasks: list[dict[str, Any]]) -> None:
    plan = _plan(*tasks)
    assert find_cycle(plan) is None
    order = topological_order(plan)
    seen: set[str] = set()
    for task_id in order:
        assert set(plan.task(task_id).dependencies) <= seen
        seen.add(task_id)
    assert len(order) == len(tasks)
