"""Request latency of the MCP API, as SDK server middleware (beside the SDK's own span).

Labels, bounded whatever a caller sends: the JSON-RPC method if it is one MCP defines, else
"other"; for tools/call the tool (metrics.tool_label: the gateway's own tools by name,
registered tools as "registered"); a request the server refused with a protocol error (an
unknown tool, oversized arguments) has an empty tool.
"""

from __future__ import annotations

import time
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.methods import SPEC_CLIENT_METHODS

from mcp_ledger.observability.metrics import LedgerMetrics, tool_label

OTHER_METHOD = "other"


def method_label(method: str) -> str:
    """The label value of a JSON-RPC method: MCP's own methods by name, anything else "other"."""
    return method if method in SPEC_CLIENT_METHODS else OTHER_METHOD


class RequestMetricsMiddleware:
    """Observes every request's duration in `ledger_request_duration_seconds`."""

    def __init__(self, metrics: LedgerMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = ctx.params.get("name") if ctx.params and ctx.method == "tools/call" else None
        tool = tool_label(name) if isinstance(name, str) else ""
        started = time.perf_counter()
        try:
            return await call_next(ctx)
        except MCPError:
            tool = ""
            raise
        finally:
            elapsed = time.perf_counter() - started
            labels = {"method": method_label(ctx.method), "tool": tool}
            self._metrics.request_seconds.labels(**labels).observe(elapsed)
