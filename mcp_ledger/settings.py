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
    kek: str = Field("", description="base64 key-encryption key(s), comma-separated, current first")
    kek_file: Path | None = Field(
        None, description="file of base64 KEKs, current first (default data_dir/kek)"
    )
    key_cache_seconds: float = Field(5.0, ge=0, description="how long a process caches an unwrapped data key")
    session_view_ttl: float = Field(
        0.0, ge=0, description="seconds a Redis session view outlives its last change"
    )
    retention_days: dict[str, int] = Field(
        default_factory=dict, description='per-tenant retention of session state, e.g. {"acme": 30}'
    )

    @property
    def store_url(self) -> str:
        """The event store URL, defaulting to a SQLite file in the data directory."""
        return self.store or f"sqlite+aiosqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def commands_topic(self) -> str:
        return f"{self.topic_prefix}ledger.commands"

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}ledger.events"

    @property
    def compliance_topic(self) -> str:
        return f"{self.topic_prefix}ledger.compliance"

    @property
    def compliance_group(self) -> str:
        return f"{self.worker_group}.compliance"

    @property
    def embedded(self) -> bool:
        """Whether everything runs in one process (in-process bus)."""
        return self.bus.startswith("memory")
