"""Plan steps that run through the command handler, and what their outcome means to a plan.

A step naming a registered or upstream tool (not a built-in) is found in the plan's scope
(its tenant and, when it runs in one, its session) and run as the same CallTool an agent's
call would be: admitted against the plan caller's roles, its arguments checked, recorded
once by its derived command id (a resumed attempt finds its recorded outcome), sealed and
erasable like every call. Such a step is retried by the plan's policy only when its tool is
safe to repeat: annotated read-only or idempotent (an upstream's `readOnlyHint` or
`idempotentHint`, an HTTP tool's safe method).
"""

from __future__ import annotations

import dataclasses

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.plans.decisions import TaskResult
from mcp_ledger.domain.registry.bindings import McpBinding
from mcp_ledger.projections.registry.catalog import CatalogEntry


def retry_safe(entry: CatalogEntry) -> bool:
    """Whether a failed attempt of this registered tool may run again."""
    binding = entry.tool.definition.binding
    return entry.spec.read_only or (isinstance(binding, McpBinding) and binding.idempotent)


async def recorded_call(calls: CommandHandler, command: CallTool) -> TaskResult:
    """Run `command` through the handler (exactly once by its id) and read its outcome."""
    recorded = await calls.handle(command)
    last = await calls.opened(recorded.events[-1])
    data = last.data
    if last.event_type == "ToolSucceeded" and not data.get("is_error"):
        return TaskResult(output=data.get("structured") or {"content": data.get("content", [])})
    if last.event_type == "ToolSucceeded":  # the tool ran and said it failed (isError)
        return TaskResult(error_code="tool_error", message=_text(data.get("content", [])))
    code = str(data.get("error_code", "forbidden"))
    return TaskResult(error_code=code, message=str(data.get("message", data.get("reason", ""))))


def unless_safe(result: TaskResult, entry: CatalogEntry) -> TaskResult:
    """The result, marked not to be retried when it failed and its tool is not safe to repeat."""
    if result.ok or retry_safe(entry):
        return result
    return dataclasses.replace(result, retryable=False)


def _text(content: object) -> str:
    blocks = content if isinstance(content, list) else []
    texts = [str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    return " ".join(texts)[:1000] or "the tool reported an error"
