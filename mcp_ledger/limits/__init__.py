"""Rate limiting of tool calls per tenant and per subject (port, policy, adapters)."""
