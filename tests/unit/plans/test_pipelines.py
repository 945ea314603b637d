"""Typed pipelines are checked at composition: types must meet, pointers go to pointer arguments."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_ledger.domain.pipelines import Pipeline, PipelineError, compose_pipeline
from mcp_ledger.domain.registry.bindings import HttpBinding
from mcp_ledger.domain.registry.model import Pipeability, ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationPolicy, definition_problems
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog

POLICY = RegistrationPolicy(allowed_hosts=("example.org",))


def definition(name: str, pipes: Pipeability, **properties: Any) -> ToolDefinition:
    return ToolDefinition(
        name=name,
        description=name,
        input_schema={"type": "object", "properties": properties or {"document": {"type": "string"}}},
        binding=HttpBinding(method="POST", base_url="https://example.org", body_argument="document"),
        pipeability=pipes,
    )


COUNT = definition(
    "count_words",
    Pipeability(accepts=("resource_link",), produces=("count",), pointer_arguments=("document",)),
)
GRADE = definition("grade", Pipeability(accepts=("count",)), n={"type": "integer"}, scale={"type": "string"})
PET = definition("pet", Pipeability(accepts=("pet",)))


def catalog(*definitions: ToolDefinition) -> dict[str, ToolSpec | None]:
    specs: dict[str, ToolSpec | None] = dict(builtin_catalog())
    specs.update({d.name: d.spec() for d in definitions})
    return specs


def pipeline(*stages: dict[str, Any]) -> Pipeline:
    return Pipeline.model_validate({"stages": list(stages)})


def test_a_resource_link_feeds_the_next_tools_pointer_argument_as_its_uri() -> None:
    stages = compose_pipeline(
        pipeline({"tool": "blob_put", "arguments": {"name": "a", "text": "x y"}}, {"tool": "count_words"}),
        catalog(COUNT),
        ["viewer"],
    )
    assert [(s.tool, s.input, s.source, s.pipe_type) for s in stages] == [
        ("blob_put", None, "", None),
        ("count_words", "document", "/uri", "resource_link"),
    ]


def test_a_typed_pipe_names_the_argument_it_fills_and_where_it_reads() -> None:
    stages = compose_pipeline(
        pipeline({"tool": "count_words"}, {"tool": "grade", "input": "n", "from": "/words"}),
        catalog(COUNT, GRADE),
        [],
    )
    assert (stages[1].input, stages[1].source, stages[1].pipe_type) == ("n", "/words", "count")


def test_a_type_mismatch_is_refused_naming_both_sides() -> None:
    with pytest.raises(PipelineError) as refused:
        compose_pipeline(
            pipeline({"tool": "echo", "arguments": {"text": "x"}}, {"tool": "pet"}), catalog(PET), []
        )
    assert refused.value.problems == [
        "stage 2: type mismatch: echo produces ['text'] but pet accepts ['pet']"
    ]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PipelineError) as refused:
        compose_pipeline(
            pipeline(
                {"tool": "echo", "input": "text"},
                {"tool": "nope"},
                {"tool": "grade", "input": "n", "arguments": {"n": 1}},
                {"tool": "register_tools"},
            ),
            {
                **catalog(GRADE),
                "register_tools": ToolSpec(
                    name="register_tools", title="", description="", input_schema={}, minimum_role="admin"
                ),
            },
            ["viewer"],
        )
    problems = " | ".join(refused.value.problems)
    assert "stage 1: has no previous stage" in problems
    assert "stage 2: unknown tool 'nope'" in problems
    assert "stage 3: 'n' is both a fixed argument and the piped input" in problems
    assert "stage 4: register_tools" in problems
    assert "admin" in problems


def test_a_typed_pipe_without_an_input_argument_is_refused() -> None:
    with pytest.raises(PipelineError, match="name the argument of grade"):
        compose_pipeline(pipeline({"tool": "count_words"}, {"tool": "grade"}), catalog(COUNT, GRADE), [])


def test_pointer_arguments_must_be_string_properties_of_a_tool_accepting_resource_links() -> None:
    no_type = definition("a", Pipeability(accepts=("text",), pointer_arguments=("document",)))
    not_string = definition(
        "b", Pipeability(accepts=("resource_link",), pointer_arguments=("n",)), n={"type": "integer"}
    )
    assert any("need 'resource_link'" in p for p in definition_problems(no_type, POLICY))
    assert any("must be a string property" in p for p in definition_problems(not_string, POLICY))
    assert definition_problems(COUNT, POLICY) == []


def test_a_tool_reading_pointers_runs_in_the_callers_session() -> None:
    assert COUNT.spec().needs_session
    assert not GRADE.spec().needs_session
