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
    plan_concurrency: int = Field(4, ge=1, le=256, description="plans one worker executes at once")
    planner_url: str = Field(
        "", description="OpenAI-compatible chat completions base URL for create_plan goals"
    )
    planner_model: str = "gpt-4o-mini"
    planner_api_key: str = ""
    max_argument_bytes: int = Field(DEFAULT_MAX_ARGUMENT_BYTES, ge=1024)
    local_tenant: str = "local"
    local_subject: str = "local-user"
    log_level: str = "INFO"

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
    def plan_runs_topic(self) -> str:
        """Plan-run requests: a message held while its plan executes is the plan's lease."""
        return f"{self.topic_prefix}ledger.plan-runs"

    @property
    def embedded(self) -> bool:
        """Whether everything runs in one process (in-process bus)."""
        return self.bus.startswith("memory")
