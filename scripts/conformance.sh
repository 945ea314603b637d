#!/usr/bin/env bash
# Run the official MCP conformance suite against a running MCP server, by hand.
#
#   scripts/conformance.sh http://127.0.0.1:8000/mcp              # both requirement sets
#   scripts/conformance.sh http://127.0.0.1:8000/mcp 2026-07-28   # one
#
# Installs the suite on first use (scripts/services.sh start-conformance), runs
# `server --url URL --requirements REVISION` for each set, prints the scored checks passed of
# total and each failure by name (scenario/check-id); exits 1 if a scored check failed.
# docs/conformance.md says how to start the everything server or the gateway to point it at.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec uv run --frozen python -m tests.support.conformance "$@"
