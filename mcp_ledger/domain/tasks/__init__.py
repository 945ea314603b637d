"""The MCP task aggregate (the `io.modelcontextprotocol/tasks` extension): a tool call the
agent collects later. Its events, its pure fold and the choice of sync or task per call."""
