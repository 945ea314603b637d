"""A task-unaware MCP server with the tools the suite's `tasks-*` scenarios call, run as a
child process: `python -m tests.support.tasks_upstream --port 0` (uvicorn prints the port it
bound).

It knows nothing of tasks: every tool is a plain synchronous MCP tool on the SDK's
MCPServer. The gateway in front of it decides which of them run as tasks (its
`task_support` registration option), so whatever the scenarios see of tasks is the
gateway's. Tools, as the scenarios describe them: `greet` (`Hello, {name}!`),
`slow_compute` (sleeps `seconds`, then answers), `failing_job` (a tool error after about a
second), `protocol_error_job` (a JSON-RPC error, not a tool result), `confirm_delete` and
`multi_input` (ask the client through elicitation: requests on a 2025-11-25 session, an
input_required round on 2026-07-28, where a server sends no requests), `test_tool_with_task`
(elicits a `user_name`, or the scenario's `name`, and answers with it).

`--max-seconds` caps `slow_compute`'s sleep. A cancelled task's upstream call is not yet
stopped on its worker, so a cancelled 60-second `slow_compute` would hold a worker slot
for a minute and stall the scenarios after it; with a cap of a few seconds the call is still
running when the scenarios cancel it (they cancel at once), so every check means the same.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp_types import (
    INTERNAL_ERROR,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    InputRequiredResult,
)
from pydantic import BaseModel

server = MCPServer("tasks-fixture")
MAX_SECONDS = [600.0]
"""The cap on `slow_compute`'s sleep (set from `--max-seconds`)."""


TASK_SUPPORT = {
    "slow_compute": "optional",
    "failing_job": "required",
    "protocol_error_job": "optional",
    "confirm_delete": "optional",
    "multi_input": "optional",
    "test_tool_with_task": "required",
}
"""How a gateway in front of this server registers it (`task_support`): `greet` stays
synchronous; `failing_job` and `test_tool_with_task` are `required` (tasks-required-task-error
and tasks-mrtr-composition say so; a negotiating client's call is a task either way)."""


class Confirmation(BaseModel):
    confirm: bool


class UserName(BaseModel):
    user_name: str = ""
    name: str = ""


@server.tool()
def greet(name: str) -> str:
    """Greet someone by name."""
    return f"Hello, {name}!"


@server.tool()
async def slow_compute(seconds: float = 1.0, label: str = "") -> str:
    """Sleep `seconds`, then say so."""
    await asyncio.sleep(max(0.0, min(seconds, MAX_SECONDS[0])))
    return f"computed {label or 'result'} after {seconds:g}s"


@server.tool()
async def failing_job() -> str:
    """Fail as a tool (isError) after about a second."""
    await asyncio.sleep(1.0)
    raise ToolError("failing_job always fails")


@server.tool()
async def protocol_error_job() -> str:
    """Answer with a JSON-RPC error instead of a tool result."""
    raise MCPError(INTERNAL_ERROR, "protocol_error_job: internal failure")


Asked = dict[str, tuple[str, type[BaseModel]]]
"""What a tool asks its client: key -> (message, the answer's schema)."""


async def ask(ctx: Context, asked: Asked) -> dict[str, tuple[str, dict[str, Any]]] | InputRequiredResult:
    """The client's answers (action, content) to every question, asked at once: as requests
    on a session that can send them (2025-11-25), else as one input_required round whose
    answers come with the retry (2026-07-28, where the server may send no requests)."""
    given = ctx.input_responses or {}
    if all(isinstance(given.get(key), ElicitResult) for key in asked):
        return {key: _answer(given[key]) for key in asked}
    try:
        answers = await asyncio.gather(*(ctx.elicit(message, model) for message, model in asked.values()))
    except NoBackChannelError:
        requests: dict[str, InputRequest] = {
            key: ElicitRequest(
                params=ElicitRequestFormParams(message=message, requested_schema=model.model_json_schema())
            )
            for key, (message, model) in asked.items()
        }
        return InputRequiredResult(input_requests=requests)
    return {key: _elicited(answer) for key, answer in zip(asked, answers, strict=True)}


def _elicited(answer: Any) -> tuple[str, dict[str, Any]]:
    data = getattr(answer, "data", None)
    return str(answer.action), {} if data is None else data.model_dump()


def _answer(response: Any) -> tuple[str, dict[str, Any]]:
    content = response.content if isinstance(response.content, dict) else {}
    return str(response.action), dict(content)


@server.tool()
async def confirm_delete(
    ctx: Context, path: str = "/tmp/example", filename: str = ""
) -> str | InputRequiredResult:
    """Ask the client to confirm, then say what happened."""
    target = filename or path
    answers = await ask(ctx, {"confirm": (f"Delete {target}?", Confirmation)})
    if isinstance(answers, InputRequiredResult):
        return answers
    action, content = answers["confirm"]
    return f"deleted {target}" if action == "accept" and content.get("confirm") else f"kept {target}"


@server.tool()
async def multi_input(ctx: Context) -> str | InputRequiredResult:
    """Ask the client two questions at once."""
    answers = await ask(
        ctx,
        {"first": ("First confirmation?", Confirmation), "second": ("Second confirmation?", Confirmation)},
    )
    if isinstance(answers, InputRequiredResult):
        return answers
    return f"answers: {answers['first'][0]}, {answers['second'][0]}"


@server.tool()
async def test_tool_with_task(ctx: Context) -> str | InputRequiredResult:
    """Ask for a user name, then greet it."""
    answers = await ask(ctx, {"user_name": ("What is your name?", UserName)})
    if isinstance(answers, InputRequiredResult):
        return answers
    action, content = answers["user_name"]
    name = content.get("user_name") or content.get("name") if action == "accept" else None
    return f"Hello, {name or 'nobody'}!"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    options = parser.parse_args()
    MAX_SECONDS[0] = options.max_seconds
    server.run("streamable-http", host="127.0.0.1", port=options.port)


if __name__ == "__main__":
    main()
