"""The agent's `CallToolResult` from a command's terminal event: shared by tools/call and
the tasks that inline the same result later."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types
from pydantic import TypeAdapter

_CONTENT = TypeAdapter(list[types.ContentBlock])


def tool_error(text: str) -> types.CallToolResult:
    """A tool error the model can read (isError)."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def result_from_event(event: Mapping[str, Any]) -> types.CallToolResult:
    """The agent's answer from a terminal event (wire form)."""
    data = event["data"]
    if event["event_type"] == "ToolCallDenied":
        return tool_error(f"forbidden: {data['reason']}")
    if event["event_type"] == "ToolFailed":
        return tool_error(f"{data['error_code']}: {data['message']}")
    content = _CONTENT.validate_python(data["content"])
    return types.CallToolResult(
        content=content, structured_content=data.get("structured"), is_error=bool(data.get("is_error"))
    )
