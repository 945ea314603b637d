"""A stdio MCP server for federation tests, run by the gateway's worker as
`python -m tests.support.stdio_upstream`: one tool, `pid`, answering its process id (so a
test can see the process end when its session is closed)."""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-fixture")


@server.tool()
def pid() -> str:
    """This server's process id."""
    return str(os.getpid())


if __name__ == "__main__":
    server.run("stdio")
