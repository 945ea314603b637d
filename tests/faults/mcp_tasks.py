"""MCP tasks in the fault load: a client calls a task-supporting tool (`echo`, `sleep`) with the
tasks extension negotiated in the 2026-07-28 envelope, is answered with a task at once, then
polls tasks/get until the task is terminal. The whole exchange is one recorded operation: ok
with the tool's true result, fail with the error the agent was finally given (a task that
failed, a tool error, a JSON-RPC or transport error of the start), or timeout.

Owns the wire of those calls (raw JSON-RPC over httpx, as tests/e2e/test_mcp_tasks.py speaks it:
the SDK client has no tasks API) and the sweep after a fault that asks for every task the store
holds unsettled, as an agent coming back would. It deliberately retries only tasks/get (a read):
a failed start is the agent's to retry, and is recorded as the failure it saw.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from mcp_types import ErrorData

PROTOCOL = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
POLL_SECONDS = 0.1
HTTP_SECONDS = 20.0


class TaskRpcError(Exception):
    """A JSON-RPC error answered to a task's start or to tasks/get."""

    def __init__(self, error: ErrorData) -> None:
        super().__init__(f"{error.code} {error.message}")
        self.error = error


async def _rpc(
    http: httpx.AsyncClient, url: str, session: str | None, method: str, params: dict[str, Any]
) -> Any:
    """One 2026-07-28 request negotiating the tasks extension; its result.

    Raises:
        TaskRpcError: the answer was a JSON-RPC error.
        httpx.HTTPError: the transport failed, or the answer was not JSON-RPC.
    """
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": method,
        "mcp-name": str(params.get("name") or params.get("taskId")),
        **({"Ledger-Session": session} if session else {}),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": meta}}
    response = await http.post(url, json=body, headers=headers)
    try:
        answer = response.json()
    except ValueError as error:
        raise httpx.HTTPError(f"HTTP {response.status_code}: not JSON-RPC: {response.text[:80]}") from error
    if "error" in answer:
        raise TaskRpcError(ErrorData.model_validate(answer["error"]))
    return answer["result"]


def _retryable(error: ErrorData) -> bool:
    return isinstance(error.data, dict) and error.data.get("retryable") is True


async def settled(url: str, session: str | None, task_id: str, deadline: float) -> dict[str, Any]:
    """tasks/get until the task is terminal or `deadline` (monotonic) passes; the last answer.
    A read that failed with a retryable error or in transport is asked again.

    Raises:
        TaskRpcError: a non-retryable JSON-RPC error (an unknown task: the task was lost).
        TimeoutError: not terminal by the deadline.
    """
    async with httpx.AsyncClient(timeout=HTTP_SECONDS) as http:
        while time.monotonic() < deadline:
            try:
                task: dict[str, Any] = await _rpc(http, url, session, "tasks/get", {"taskId": task_id})
            except TaskRpcError as error:
                if not _retryable(error.error):
                    raise
            except (httpx.HTTPError, OSError):
                pass
            else:
                if task.get("status") in TERMINAL:
                    return task
            await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"task {task_id} not terminal in time")


async def start(url: str, session: str | None, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """tools/call of a task-supporting tool; the CreateTaskResult (or a synchronous result).

    Raises:
        TaskRpcError, httpx.HTTPError: as _rpc.
    """
    async with httpx.AsyncClient(timeout=HTTP_SECONDS) as http:
        created: dict[str, Any] = await _rpc(
            http, url, session, "tools/call", {"name": tool, "arguments": arguments}
        )
        return created


async def run_task(
    url: str, session: str | None, tool: str, arguments: dict[str, Any], deadline: float
) -> tuple[str | None, dict[str, Any]]:
    """Start a task and poll it to its end: (task id, the terminal task as tasks/get shows it).

    Raises:
        TaskRpcError, httpx.HTTPError, TimeoutError: as start and settled; ValueError: the call
        was not answered with a task (the gateway ran it synchronously).
    """
    created = await start(url, session, tool, arguments)
    if created.get("resultType") != "task" or not isinstance(created.get("taskId"), str):
        raise ValueError(f"{tool} was not answered with a task: {str(created)[:120]}")
    return created["taskId"], await settled(url, session, created["taskId"], deadline)


def outcome_of(task: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(the tool's structured result, "") for a completed task; (None, why) otherwise."""
    result = task.get("result")
    if task.get("status") == "completed" and isinstance(result, dict):
        if result.get("isError"):
            return None, f"tool error: {str(result.get('content'))[:120]}"
        structured = result.get("structuredContent")
        return (structured, "") if isinstance(structured, dict) else (None, f"no structured result: {result}")
    error = task.get("error") or {}
    return None, f"task {task.get('status')}: {error.get('code')} {str(error.get('message'))[:100]}"


__all__ = ["TaskRpcError", "outcome_of", "run_task", "settled"]
