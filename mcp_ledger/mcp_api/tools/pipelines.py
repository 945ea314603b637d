"""The run_pipeline tool: compose a typed chain of tools, then run it stage by stage.

Composition is checked in full before anything runs (domain/pipelines.py: tools exist and
are the caller's to call, each stage's produces meets the next one's accepts, fixed
arguments fit the schemas). Each stage is then an ordinary tool call through ToolService,
recorded, role-checked and sealed like any other, all under the pipeline's correlation id;
the previous stage's structured output (at `from`) fills the next stage's `input`. A
resource_link passes as its URI and is resolved by the worker (consumers/pointer_inputs.py).
Each stage is charged to the caller's rate limit (run_pipeline itself is not): a refused
stage ends the pipeline with the JSON-RPC rate-limit error naming the stage, and nothing
after it runs.

Why not a plan: plans run built-in tools only (their executor has no registry), and a
pipeline is mostly registered tools; a linear chain needs no scheduler either. What this
does not give is resumption after an API crash: the stages already run stay recorded, and
the caller reruns the rest.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcp_ledger.checks.arguments import argument_problem, argument_size
from mcp_ledger.domain.pipelines import RUN_PIPELINE, ComposedStage, Pipeline, PipelineError, compose_pipeline
from mcp_ledger.domain.plans.refs import PlanReferenceError, resolve_pointer
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.rate_limits import RATE_LIMITED
from mcp_ledger.mcp_api.tools.service import ServiceOutcome, ToolService

Progress = Callable[[int, int, str], Awaitable[None]]


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _fixed_argument_problem(stage: ComposedStage, spec: ToolSpec) -> str | None:
    """The stage's own arguments against its schema, the piped input not yet required."""
    schema = dict(spec.input_schema)
    schema["required"] = [name for name in schema.get("required", []) if name != stage.input]
    return argument_problem(schema, stage.arguments)


class PipelineTool:
    """run_pipeline for the MCP server, over ToolService."""

    spec = RUN_PIPELINE

    def __init__(self, service: ToolService, *, max_argument_bytes: int) -> None:
        self._service = service
        self._max_argument_bytes = max_argument_bytes

    async def compose(
        self, identity: Identity, session_id: str | None, arguments: dict[str, Any]
    ) -> list[ComposedStage]:
        """The checked stages for this caller.

        Raises:
            PipelineError: with every problem found.
        """
        try:
            pipeline = Pipeline.model_validate(arguments)
        except ValidationError as error:
            raise PipelineError(
                [f"{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
            ) from None
        specs = {s.tool: await self._service.find(identity, session_id, s.tool) for s in pipeline.stages}
        stages = compose_pipeline(pipeline, specs, identity.roles)
        problems = [
            f"stage {index}: {problem}"
            for index, stage in enumerate(stages, start=1)
            if (spec := specs[stage.tool]) is not None
            and (problem := _fixed_argument_problem(stage, spec)) is not None
        ]
        if problems:
            raise PipelineError(problems)
        return stages

    async def call(
        self, identity: Identity, session_id: str | None, arguments: dict[str, Any], progress: Progress
    ) -> types.CallToolResult:
        """Compose, then run every stage; the answer is the last stage's result and a summary."""
        size = argument_size(arguments)
        if size > self._max_argument_bytes:
            return _error(f"arguments are {size} bytes; the limit is {self._max_argument_bytes}")
        try:
            stages = await self.compose(identity, session_id, arguments)
        except PipelineError as error:
            return _error("invalid_pipeline: " + "; ".join(error.problems))
        # The pipeline's id is returned and names its stages in the audit log: unguessable.
        correlation = f"pipeline-{secrets.token_hex(16)}"
        ran: list[dict[str, Any]] = []
        piped: Any = None
        outcome: ServiceOutcome | None = None
        for index, stage in enumerate(stages, start=1):
            call_arguments = dict(stage.arguments)
            if stage.input is not None:
                call_arguments[stage.input] = piped
            outcome = await self._service.call(
                identity, session_id, stage.tool, call_arguments, correlation_id=correlation
            )
            if outcome.kind == "rate_limited":
                # Nothing of this stage ran: the caller retries the rest after the wait.
                context = {"stage": index, "tool": stage.tool, "stages": ran}
                raise MCPError(RATE_LIMITED, outcome.title, {**outcome.data, **context})
            ran.append({"tool": stage.tool, "status": outcome.kind, "command_id": outcome.command_id})
            await progress(index, len(stages), f"{stage.tool}: {outcome.kind}")
            if outcome.kind != "ok":
                detail = "; ".join([outcome.title, *outcome.problems])
                return _error(f"stage {index} ({stage.tool}) failed: {detail}; stages: {json.dumps(ran)}")
            if index < len(stages):
                try:
                    piped = resolve_pointer(outcome.data, stages[index].source)
                except PlanReferenceError as error:
                    return _error(
                        f"stage {index} ({stage.tool}) output cannot feed stage {index + 1}: {error}"
                    )
        assert outcome is not None
        summary = {"pipeline_id": correlation, "stages": ran, "output": outcome.data}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(summary, ensure_ascii=False))],
            structured_content=summary,
        )
