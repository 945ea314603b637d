"""Configuration: LEDGER_* environment variables (or CLI flags), read at the edge only.

Empty bus/store/state mean the embedded default: in-process bus, SQLite file in the data
directory, in-memory projections.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_ledger.argument_check import DEFAULT_MAX_ARGUMENT_BYTES


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "mcp-ledger"


class Settings(BaseSettings):
    """Everything an operator can set."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    bus: str = Field("memory://", description="kafka://host:port[,host:port] or memory://")
    store: str = Field(
        "", description="postgresql+asyncpg://… or sqlite+aiosqlite:///…; empty: SQLite in data_dir"
    )
    state: str = Field("memory://", description="redis://host:port/db or memory://")
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    topic_prefix: str = Field("", description="prepended to topic names (isolates test runs)")
    state_prefix: str = Field("ledger:", description="prefix of every Redis key")
    worker_group: str = "ledger-workers"
    projection_group: str = "ledger-projections"
    worker_concurrency: int = Field(2, ge=1, le=64, description="command partitions handled at once")
    projection_concurrency: int = Field(1, ge=1, le=64, description="event partitions projected at once")
    call_timeout: float = Field(30.0, gt=0)
    max_argument_bytes: int = Field(DEFAULT_MAX_ARGUMENT_BYTES, ge=1024)
    local_tenant: str = "local"
    local_subject: str = "local-user"
    log_level: str = "INFO"
    registering_role: str = Field("admin", description="role needed to register tools tenant-wide")
    registry_allowed_hosts: str = Field(
        "", description="comma-separated hosts tools may call: host[:port], *.domain"
    )
    data_source_allowlist: str = Field(
        "", description="comma-separated database URLs (no credentials) to connect"
    )
    data_source_sqlite_dir: Path | None = Field(None, description="SQLite data sources must lie under it")
    http_client_cert: Path | None = Field(None, description="client certificate for mTLS tools (PEM)")
    http_client_key: Path | None = Field(None, description="its private key (PEM)")
    http_ca_bundle: Path | None = Field(None, description="CA bundle to verify tool endpoints")

    @property
    def store_url(self) -> str:
        """The event store URL, defaulting to a SQLite file in the data directory."""
        return self.store or f"sqlite+aiosqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip() for h in self.registry_allowed_hosts.split(",") if h.strip())

    @property
    def commands_topic(self) -> str:
        return f"{self.topic_prefix}ledger.commands"

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}ledger.events"

    @property
    def embedded(self) -> bool:
        """Whether everything runs in one process (in-process bus)."""
        return self.bus.startswith("memory")
