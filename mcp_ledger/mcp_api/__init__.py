"""The MCP API: Streamable HTTP endpoint, identity, and the command gateway."""
