"""Request latency of the MCP API, as SDK server middleware (beside the SDK's own span).

Labels: the JSON-RPC method and, for tools/call, the tool name; a request the server
refused with a protocol error (an unknown tool, oversized arguments) is labelled with an
empty tool so callers cannot mint label values.
"""

from __future__ import annotations

import time
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_ledger.observability.metrics import LedgerMetrics


class RequestMetricsMiddleware:
    """Observes every request's duration in `ledger_request_duration_seconds`."""

    def __init__(self, metrics: LedgerMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = ctx.params.get("name") if ctx.params and ctx.method == "tools/call" else None
        tool = name if isinstance(name, str) else ""
        started = time.perf_counter()
        try:
            return await call_next(ctx)
        except MCPError:
            tool = ""
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.request_seconds.labels(method=ctx.method, tool=tool).observe(elapsed)
