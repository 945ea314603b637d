"""`python -m mcp_ledger`: the `mcp-ledger` command."""

from mcp_ledger.cli.app import main

main()
