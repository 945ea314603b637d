"""How workers authenticate to upstream MCP servers: static secrets opened from the store,
OAuth 2.1 client credentials, and RFC 8693 token exchange for per-user upstream tokens."""
