"""gRPC transport of MCPToolService (proto/mcp_tool_service.proto)."""
