"""What the `mcp-ledger` commands share: the common flags, settings from them, error output.

Flags override LEDGER_* variables; `fail` is how a command ends with a clear message instead
of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mcp_ledger.settings import Settings

console = Console(stderr=True)

BusOpt = Annotated[str | None, typer.Option("--bus", help="kafka://host:port or memory:// (LEDGER_BUS)")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="event store URL (LEDGER_STORE)")]
StateOpt = Annotated[str | None, typer.Option("--state", help="redis://… or memory:// (LEDGER_STATE)")]
HostOpt = Annotated[str | None, typer.Option("--host", help="listen address (LEDGER_HOST)")]
PortOpt = Annotated[int | None, typer.Option("--port", help="listen port (LEDGER_PORT)")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="embedded data directory (LEDGER_DATA_DIR)")]
NoAuthOpt = Annotated[
    bool | None,
    typer.Option("--no-auth", help="serve everyone as the local user; loopback only (LEDGER_NO_AUTH)"),
]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)


def fail(message: str) -> typer.Exit:
    """Print the error; the Exit (code 2) to raise."""
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)
