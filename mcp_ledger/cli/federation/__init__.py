"""The federation commands: upstream MCP servers (`mcp-ledger servers …`)."""
