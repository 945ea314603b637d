"""`python -m mcp_ledger.cli`: the `mcp-ledger` command."""

from mcp_ledger.cli.app import main

main()
