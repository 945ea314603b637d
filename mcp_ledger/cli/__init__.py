"""The `mcp-ledger` command line (cli/app.py), one module per area."""
