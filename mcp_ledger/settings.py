"""Configuration: LEDGER_* environment variables (or CLI flags), read at the edge only.

Empty bus/store/state mean the embedded default: in-process bus, SQLite file in the data
directory, in-memory projections.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_ledger.checks.arguments import DEFAULT_MAX_ARGUMENT_BYTES
from mcp_ledger.domain.tools import TaskSupport


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
    worker_concurrency: int = Field(
        2, ge=1, le=64, description="command consumers per worker (each owns some partitions)"
    )
    worker_in_flight: int = Field(
        8, ge=1, le=256, description="commands each command consumer handles at once, never two of one key"
    )
    projection_concurrency: int = Field(1, ge=1, le=64, description="event partitions projected at once")
    call_timeout: float = Field(30.0, gt=0)
    kafka_session_timeout_ms: int = Field(
        6000, ge=1000, description="a crashed worker's partitions move after this (docs/reliability.md)"
    )
    kafka_heartbeat_interval_ms: int = Field(1500, ge=100, description="well under the session timeout")
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
    upstreams: list[str] = Field(
        default_factory=list, description="NAME=URL MCP servers `serve` fronts for the local tenant"
    )
    upstream_stdio: dict[str, list[str]] = Field(
        default_factory=dict, description='stdio MCP servers workers may run: {"NAME": ["cmd", "arg"]}'
    )
    upstream_task_support: dict[str, dict[str, TaskSupport]] = Field(
        default_factory=dict,
        description='task support of operator upstreams\' tools: {"NAME": {"TOOL or pattern": "optional"}}',
    )
    upstream_idle_seconds: float = Field(300.0, gt=0, description="idle upstream sessions close after")
    upstream_max_sessions: int = Field(500, ge=1, description="upstream sessions one worker holds")
    upstream_breaker_failures: int = Field(5, ge=1, description="failures that open an upstream's circuit")
    upstream_breaker_cooldown: float = Field(30.0, gt=0, description="seconds an open circuit refuses")
    upstream_input_wait: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="seconds a worker waits for a 2026-07-28 agent's retry of an input round "
        "(the waiting call holds one of the worker's command slots)",
    )
    grpc_host: str = Field("127.0.0.1", description="where `mcp-ledger grpc` listens")
    grpc_port: int = Field(50051, ge=0, le=65535, description="MCPToolService gRPC port")

    no_auth: bool = Field(False, description="serve everyone as the local user (loopback only)")
    public_url: str = Field("", description="this server's public base URL; default http://host:port")
    auth_issuer: str = Field("mcp-ledger-dev", description="required `iss` of access tokens")
    auth_audience: str = Field("", description="required `aud`; default the MCP endpoint URL")
    auth_jwks_url: str = Field("", description="JWKS URL of the authorization server")
    auth_keys_file: Path | None = Field(None, description="PEM public key or JWKS JSON file")
    auth_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"])
    authorization_servers: list[str] = Field(default_factory=list, description="for RFC 9728 metadata")
    http_allowed_origins: list[str] = Field(
        default_factory=list, description="Origins /mcp accepts beside the public URL's (base:* for any port)"
    )
    http_allowed_hosts: list[str] = Field(
        default_factory=list, description="Host values /mcp accepts off loopback; empty: any"
    )
    console_client_id: str = Field(
        "mcp-ledger-console", description="the console's OAuth client id at the authorization server"
    )
    console_scope: str = Field("", description="scopes the console asks the authorization server for")
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    session_ttl: float = Field(1800.0, gt=0, description="idle seconds before a session expires")
    task_ttl_ms: int = Field(
        3_600_000, ge=1_000, le=30 * 86_400_000, description="how long an MCP task and its result are kept"
    )
    task_purge_interval_s: float = Field(
        30.0, gt=0, le=86_400, description="seconds between a worker's sweeps purging expired MCP tasks"
    )
    task_cancel_poll_ms: int = Field(
        250,
        ge=10,
        le=60_000,
        description="how often a worker running a task's tool checks for its cancellation",
    )
    task_input_wait_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="seconds a task parked as input_required waits for tasks/update before it fails",
    )
    pointer_ttl: float = Field(600.0, ge=300, le=900, description="lifetime of signed blob pointers")
    secret_key: str = Field("", description="base64 secret (>= 32 bytes) for pointers and sealed state")
    blobs: str = Field("", description="blob store: empty for files in data_dir/blobs, or 'store'")
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
    subject_retention_days: dict[str, int] = Field(
        default_factory=dict,
        description='days of inactivity before `retention run` erases a subject, per tenant ("*": any)',
    )
    otel_exporter: str = Field("none", description="traces: none, console or an OTLP/HTTP collector URL")
    log_format: str = Field("text", description="text or json (one object per line, with correlation ids)")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics on this port (API, worker; 0: any free one, logged)"
    )
    metrics_host: str = Field("127.0.0.1", description="address of the /metrics listener")
    metrics_token: str = Field("", description="bearer token /metrics requires; needed off loopback")
    drain_timeout: float = Field(25.0, gt=0, description="seconds shutdown waits for in-flight requests")
    rate_tenant: str = Field("", description='tool calls per tenant, "N/SECONDS" (e.g. 1000/60); empty: none')
    rate_subject: str = Field("", description='tool calls per subject, "N/SECONDS"; empty: none')
    rate_tenant_overrides: dict[str, str] = Field(
        default_factory=dict, description='per-tenant limits, e.g. {"acme": "5000/60", "free": "10/60"}'
    )
    rate_refusal_ttl: float = Field(7 * 86400.0, gt=0, description="seconds refusal counts are kept")

    @property
    def store_url(self) -> str:
        """The event store URL, defaulting to a SQLite file in the data directory."""
        return self.store or f"sqlite+aiosqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def base_url(self) -> str:
        """Where clients reach this server (no trailing slash)."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def audience(self) -> str:
        """The audience access tokens must carry: this MCP endpoint unless configured."""
        return self.auth_audience or self.mcp_url

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
    def progress_topic(self) -> str:
        """Upstream progress relayed from workers to the API replica holding the request."""
        return f"{self.topic_prefix}ledger.progress"

    @property
    def reply_topic(self) -> str:
        """Agents' answers to upstream requests relayed to every worker (the back channel)."""
        return f"{self.topic_prefix}ledger.replies"

    @property
    def compliance_topic(self) -> str:
        return f"{self.topic_prefix}ledger.compliance"

    @property
    def compliance_group(self) -> str:
        return f"{self.worker_group}.compliance"

    @property
    def plan_runs_topic(self) -> str:
        """Plan-run requests: a message held while its plan executes is the plan's lease."""
        return f"{self.topic_prefix}ledger.plan-runs"

    @property
    def embedded(self) -> bool:
        """Whether everything runs in one process (in-process bus)."""
        return self.bus.startswith("memory")
