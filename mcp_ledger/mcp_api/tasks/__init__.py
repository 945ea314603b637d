"""MCP tasks at the edge (`io.modelcontextprotocol/tasks`, SEP-2663): negotiation, the task
a `tools/call` returns at once, and tasks/get, tasks/update, tasks/cancel."""
