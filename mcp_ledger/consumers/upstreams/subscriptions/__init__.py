"""Resource subscriptions forwarded to upstream MCP servers and their updates recorded."""
