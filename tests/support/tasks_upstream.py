"""A task-unaware MCP server with the tools the suite's `tasks-*` scenarios call, run as a
child process: `python -m tests.support.tasks_upstream --port 0` (uvicorn prints the port it
bound).

It knows nothing of tasks: every tool is a plain synchronous MCP tool on the SDK's
MCPServer. The gateway in front of it decides which of them run as tasks (its
`task_support` registration option), so whatever the scenarios see of tasks is the
gateway's. Tools, as the scenarios describe them: `greet` (`Hello, {name}!`),
`slow_compute` (sleeps `seconds`, then answers), `failing_job` (a tool error after about a
second), `protocol_error_job` (a JSON-RPC error, not a tool result), `confirm_delete` and
`multi_input` (ask the client through elicitation), `test_tool_with_task` (elicits a
`user_name` and answers with it).

`--max-seconds` caps `slow_compute`'s sleep. A cancelled task's upstream call is not yet
stopped on its worker, so a cancelled 60-second `slow_compute` would hold a worker slot
for a minute and stall the scenarios after it; with a cap of a few seconds the call is still
running when the scenarios cancel it (they cancel at once), so every check means the same.
"""

from __future__ import annotations

import argparse
import asyncio

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR
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
    user_name: str


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


@server.tool()
async def confirm_delete(ctx: Context, path: str = "/tmp/example") -> str:
    """Ask the client to confirm, then say what happened."""
    answer = await ctx.elicit(f"Delete {path}?", Confirmation)
    confirmed = answer.action == "accept" and answer.data is not None and answer.data.confirm
    return f"deleted {path}" if confirmed else f"kept {path}"


@server.tool()
async def multi_input(ctx: Context) -> str:
    """Ask the client two questions at once."""
    first, second = await asyncio.gather(
        ctx.elicit("First confirmation?", Confirmation), ctx.elicit("Second confirmation?", Confirmation)
    )
    return f"answers: {first.action}, {second.action}"


@server.tool()
async def test_tool_with_task(ctx: Context) -> str:
    """Ask for a user name, then greet it."""
    answer = await ctx.elicit("What is your name?", UserName)
    name = answer.data.user_name if answer.action == "accept" and answer.data is not None else "nobody"
    return f"Hello, {name}!"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    options = parser.parse_args()
    MAX_SECONDS[0] = options.max_seconds
    server.run("streamable-http", host="127.0.0.1", port=options.port)


if __name__ == "__main__":
    main()
