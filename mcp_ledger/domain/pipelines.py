"""Typed tool pipelines: a chain of tools, checked at composition before anything runs.

Owns the pipeline shape (stages: tool, fixed arguments, which argument takes the previous
stage's output, and where in that output to read it) and `compose_pipeline`, which checks
every stage against the tools' pipeability: each stage's `produces` must share a type with
the next stage's `accepts`. The type `resource_link` is a signed pointer: the value passed
on is the producer's `uri`, into one of the consumer's `pointer_arguments`; the worker
resolves it (checked for the caller and session) before the consumer runs. Pure: running
the stages is the API's (mcp_api/pipelines.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.plans.refs import PointerError, parse_pointer
from mcp_ledger.domain.registry.model import Pipeability
from mcp_ledger.domain.registry.registration import POINTER_TYPE
from mcp_ledger.domain.tools import ToolSpec

MAX_STAGES = 20


class PipelineStage(BaseModel):
    """One tool of the chain; `input` and `from` say how the previous output comes in."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    tool: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    input: str | None = Field(None, min_length=1, max_length=128)
    """The argument receiving the previous stage's output (default: the pointer argument)."""
    source: str | None = Field(None, alias="from", max_length=1000)
    """RFC 6901 pointer into the previous stage's structured output (default: all of it,
    or `/uri` for a resource_link)."""


class Pipeline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: tuple[PipelineStage, ...] = Field(min_length=1, max_length=MAX_STAGES)


@dataclass(frozen=True, slots=True)
class ComposedStage:
    """A checked stage: call `tool` with `arguments`, plus `input` = previous output at `source`."""

    tool: str
    arguments: dict[str, Any]
    input: str | None = None
    source: str = ""
    pipe_type: str | None = None


class PipelineError(ValueError):
    """The pipeline cannot run; `problems` say why, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def pipeability_of(spec: ToolSpec) -> Pipeability:
    """What a tool accepts and produces, from its annotations (empty when it says nothing)."""
    raw = spec.annotations.get("pipeability")
    return Pipeability.model_validate(raw) if isinstance(raw, dict) else Pipeability()


def _tool_problems(
    index: int, stage: PipelineStage, spec: ToolSpec | None, roles: Collection[str]
) -> list[str]:
    if spec is None:
        return [f"stage {index}: unknown tool {stage.tool!r}"]
    if spec.opens_session:
        return [f"stage {index}: {stage.tool} cannot run inside a pipeline"]
    denied = access_problem(roles, spec.minimum_role, spec.allowed_roles)
    return [f"stage {index}: {stage.tool}: {denied}"] if denied else []


def _link(index: int, before: tuple[str, ToolSpec], stage: PipelineStage, spec: ToolSpec) -> ComposedStage:
    """The stage joined to its producer.

    Raises:
        PipelineError: the types do not meet, or the input argument is wrong.
    """
    producer, gives, takes = before[0], pipeability_of(before[1]), pipeability_of(spec)
    common = [kind for kind in gives.produces if kind in takes.accepts]
    if not common:
        raise PipelineError(
            [
                f"stage {index}: type mismatch: {producer} produces {list(gives.produces)} but "
                f"{stage.tool} accepts {list(takes.accepts)}"
            ]
        )
    pipe_type = POINTER_TYPE if POINTER_TYPE in common else common[0]
    if pipe_type == POINTER_TYPE:
        argument = stage.input or (takes.pointer_arguments[0] if takes.pointer_arguments else None)
        if argument not in takes.pointer_arguments:
            raise PipelineError([f"stage {index}: {stage.tool} takes no resource_link in {argument!r}"])
        return ComposedStage(stage.tool, dict(stage.arguments), argument, stage.source or "/uri", pipe_type)
    properties = spec.input_schema.get("properties") or {}
    if stage.input is None or stage.input not in properties:
        raise PipelineError(
            [f"stage {index}: name the argument of {stage.tool} that takes {producer}'s output (input)"]
        )
    return ComposedStage(stage.tool, dict(stage.arguments), stage.input, stage.source or "", pipe_type)


def _shape_problems(index: int, stage: PipelineStage) -> list[str]:
    problems = []
    if index == 1 and (stage.input is not None or stage.source is not None):
        problems.append("stage 1: has no previous stage to take input from")
    if stage.input is not None and stage.input in stage.arguments:
        problems.append(f"stage {index}: {stage.input!r} is both a fixed argument and the piped input")
    try:
        parse_pointer(stage.source or "")
    except PointerError as error:
        problems.append(f"stage {index}: from: {error}")
    return problems


def compose_pipeline(
    pipeline: Pipeline, specs: Mapping[str, ToolSpec | None], roles: Collection[str]
) -> list[ComposedStage]:
    """The checked stages, in order; `specs` maps each stage's tool to its spec (or None).

    Raises:
        PipelineError: with every problem found; nothing may run.
    """
    problems: list[str] = []
    composed: list[ComposedStage] = []
    for index, stage in enumerate(pipeline.stages, start=1):
        spec = specs.get(stage.tool)
        found = _tool_problems(index, stage, spec, roles) + _shape_problems(index, stage)
        problems += found
        if found or spec is None:
            continue
        if index == 1:
            composed.append(ComposedStage(stage.tool, dict(stage.arguments)))
            continue
        previous = pipeline.stages[index - 2]
        before = specs.get(previous.tool)
        if before is None:
            continue
        try:
            composed.append(_link(index, (previous.tool, before), stage, spec))
        except PipelineError as error:
            problems += error.problems
    if problems:
        raise PipelineError(problems)
    return composed


_STAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool": {"type": "string", "minLength": 1, "maxLength": 128},
        "arguments": {"type": "object"},
        "input": {"type": "string", "minLength": 1, "maxLength": 128},
        "from": {"type": "string", "maxLength": 1000},
    },
    "required": ["tool"],
    "additionalProperties": False,
}
RUN_PIPELINE = ToolSpec(
    name="run_pipeline",
    title="Run a pipeline",
    description=(
        "Run tools in a chain, each stage's output feeding the next stage's `input` argument "
        "(`from`: a JSON Pointer into the previous structured output). Stages must fit: a tool's "
        "pipeability `produces` must meet the next one's `accepts`; a resource_link (e.g. blob_put's) "
        "feeds a tool's pointer argument. Checked in full before anything runs."
    ),
    input_schema={
        "type": "object",
        "properties": {"stages": {"type": "array", "items": _STAGE, "minItems": 1, "maxItems": MAX_STAGES}},
        "required": ["stages"],
        "additionalProperties": False,
    },
    read_only=False,
)
