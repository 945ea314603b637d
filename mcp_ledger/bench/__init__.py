"""Benchmarks behind `mcp-ledger bench …`: printed as a table and written as JSON."""
