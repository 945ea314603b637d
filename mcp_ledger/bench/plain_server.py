"""The baseline: a plain official-SDK MCP server with the same echo tool and transport settings.

Run as `python -m mcp_ledger.bench.plain_server PORT [TOOL_NAME [TOOLS]]`. Used only by the benches
(`bench calls`, and `bench history` for tools/list with TOOLS more tools listed) to measure what the
gateway costs over the SDK alone.
"""

from __future__ import annotations

import sys
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server import Server, ServerRequestContext

from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.mcp_api.server import tool_listing

ECHO = builtin_catalog()["echo"]
TOOL_NAME = sys.argv[2] if len(sys.argv) > 2 else "echo"
"""Another name when the server plays an upstream behind the gateway (echo is a built-in there)."""
BENCH_TOOL: dict[str, Any] = {
    "description": "benchmark tool",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    "output_schema": None,
}
"""Shaped like the tools `bench history` registers on the gateway (bench/calls/listing.py)."""
LISTED = [
    tool_listing(ECHO.model_copy(update={"name": TOOL_NAME})),
    *(
        tool_listing(ECHO.model_copy(update={"name": f"tool_{index}", **BENCH_TOOL}))
        for index in range(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    ),
]
"""The echo tool, then as many more as asked (the tools/list baseline: listed, never called)."""


async def _list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=LISTED)


async def _call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    text = str((params.arguments or {})["text"])
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content={"text": text}
    )


def main() -> None:
    server: Server[Any] = Server("plain-sdk", on_list_tools=_list_tools, on_call_tool=_call_tool)
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
