"""The upstream target of `mcp-ledger bench calls --upstream`."""
