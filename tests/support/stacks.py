"""The gateway under test, on either stack, with auth on and real tokens.

One body of assertions runs against every stack the way eventsourcing runs one application
test on every recorder:

- `EmbeddedStack`: API and worker in the test's event loop, in-process bus, SQLite and blob
  files in a data directory, in-memory views (what `mcp-ledger serve` runs by default);
- `DistributedStack`: API replicas and workers as `mcp-ledger api` / `worker` processes on the
  real Kafka, PostgreSQL (a private, migrated database) and Redis, with their own topics,
  consumer groups and Redis keys, sharing a fresh KEK and secret.

Both trust one `TokenIssuer` (`LEDGER_AUTH_KEYS_FILE`, issuer, audience) and nothing else;
neither runs with `--no-auth`. A stack says where its data lives so tests can read it the
way someone holding its disks would (`clear_text`), erases the product's way (a tenant
admin's `POST /admin/erasures`: embedded it runs in the process, distributed it goes through
ledger.compliance to the workers; `DistributedStack.cli` runs `mcp-ledger erase` and the rest)
and exports what `mcp-ledger export` writes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from mcp_ledger.consumers.compliance.export import export_subject
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_key_store
from tests.integration.databases import private_database
from tests.integration.services import ensure_services, name_fragment
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.issuer import TokenIssuer
from tests.support.processes import REPO, LedgerProcess, isolated_env, ledger_processes, start_ledger
from tests.support.scans import (
    delete_redis_keys,
    files_holding,
    kafka_segments,
    postgres_rows_holding,
    redis_values,
)

STARTUP_SECONDS = 180.0
"""How long a process may take to serve: the processes of several test runs share two cores."""


class Stack(Protocol):
    """What a stack test needs of the gateway, whichever stack runs it."""

    name: str
    issuer: TokenIssuer
    sources_dir: Path
    """Where SQLite data sources may live (LEDGER_DATA_SOURCE_SQLITE_DIR)."""

    @property
    def urls(self) -> tuple[str, ...]:
        """The MCP endpoint of every API replica (embedded: one)."""
        ...

    @property
    def store_url(self) -> str:
        """The event store (and key table) every process of the stack shares."""
        ...

    def token(self, tenant: str, subject: str, roles: Sequence[str] = ()) -> str:
        """A real access token the stack accepts."""
        ...

    async def erase(self, tenant: str, subject: str) -> dict[str, Any]:
        """Erase a subject the product's way; the PII-free ErasureCompleted record."""
        ...

    async def export(self, tenant: str, subject: str) -> dict[str, Any]:
        """`mcp-ledger export` of a subject: their opened history and session state."""
        ...

    async def clear_text(self, needle: str) -> list[str]:
        """Every place of the stack's data (files, rows, keys, log segments, process logs)
        that holds `needle` in the clear."""
        ...


def ledger_cli(env: Mapping[str, str], *args: str, timeout: float = 120.0) -> str:
    """The stdout of `mcp-ledger ARGS…` run with exactly these LEDGER_* (none of the shell's).

    Raises:
        AssertionError: the command failed; with its output.
    """
    clean = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_ledger.cli", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"mcp-ledger {' '.join(args)} failed:\n{done.stdout!r}\n{done.stderr!r}")
    return done.stdout.decode()


async def erase_as_admin(url: str, admin_token: str, subject: str) -> dict[str, Any]:
    """`POST /admin/erasures` as a tenant admin; the ErasureCompleted record.

    Raises:
        AssertionError: the erasure did not complete (the answer's status and body).
    """
    endpoint = url.removesuffix("/mcp") + "/admin/erasures"
    async with httpx.AsyncClient(timeout=120) as http:
        answer = await http.post(
            endpoint, json={"subject": subject}, headers={"authorization": f"Bearer {admin_token}"}
        )
    assert answer.status_code == 200, (answer.status_code, answer.text)
    record = answer.json()
    assert isinstance(record, dict)
    return record


async def export_bundle(settings: Settings, tenant: str, subject: str) -> dict[str, Any]:
    """What `mcp-ledger export` writes for the subject, made in this process (the CLI's own
    parts: the audit log, the store, the key table): a subprocess costs seconds of imports."""
    store = await open_event_store(settings.store_url)
    audit = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)
    keys = open_key_store(settings)
    try:
        return await export_subject(audit, store, EventMapper(RecordSealer(keys)), tenant, subject)
    finally:
        await keys.close()
        await audit.close()
        await store.close()


def _secret() -> str:
    return base64.b64encode(new_key()).decode()


@dataclass
class EmbeddedStack:
    """The embedded gateway in this event loop, trusting only `issuer`."""

    name: ClassVar[str] = "embedded"
    issuer: TokenIssuer
    running: RunningGateway
    data_dir: Path
    sources_dir: Path

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.running.url,)

    @property
    def store_url(self) -> str:
        return self.running.runtime.settings.store_url

    def token(self, tenant: str, subject: str, roles: Sequence[str] = ()) -> str:
        return self.issuer.token(tenant, subject, roles)

    async def erase(self, tenant: str, subject: str) -> dict[str, Any]:
        return await erase_as_admin(self.urls[0], self.token(tenant, "dpo", ("admin",)), subject)

    async def export(self, tenant: str, subject: str) -> dict[str, Any]:
        return await export_bundle(self.running.runtime.settings, tenant, subject)

    async def clear_text(self, needle: str) -> list[str]:
        return files_holding(self.data_dir, needle.encode())


@asynccontextmanager
async def embedded_stack(tmp: Path) -> AsyncIterator[EmbeddedStack]:
    """An embedded gateway with auth on, its data in `tmp/data`."""
    issuer = TokenIssuer()
    data_dir, sources_dir = tmp / "data", tmp / "sources"
    data_dir.mkdir()
    sources_dir.mkdir()
    settings = embedded_settings(data_dir, no_auth=False).model_copy(
        update={
            "auth_keys_file": issuer.write_jwks(tmp / "jwks.json"),
            "auth_issuer": issuer.issuer,
            "auth_audience": issuer.audience,
            "kek": "",
            "kek_file": None,
            "secret_key": "",
            "registry_allowed_hosts": "127.0.0.1",
            "data_source_sqlite_dir": sources_dir,
        }
    )
    async with gateway(settings) as running:
        yield EmbeddedStack(issuer, running, data_dir, sources_dir)


@dataclass
class DistributedStack:
    """API replicas and workers as processes on Kafka, PostgreSQL and Redis."""

    name: ClassVar[str] = "distributed"
    issuer: TokenIssuer
    env: dict[str, str]
    tmp: Path
    sources_dir: Path
    started: list[LedgerProcess]
    apis: list[LedgerProcess] = field(default_factory=list)
    workers: list[LedgerProcess] = field(default_factory=list)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(api.url for api in self.apis)

    @property
    def store_url(self) -> str:
        return self.env["LEDGER_STORE"]

    @property
    def state_url(self) -> str:
        return self.env["LEDGER_STATE"]

    @property
    def state_prefix(self) -> str:
        return self.env["LEDGER_STATE_PREFIX"]

    @property
    def topic_prefix(self) -> str:
        return self.env["LEDGER_TOPIC_PREFIX"]

    def token(self, tenant: str, subject: str, roles: Sequence[str] = ()) -> str:
        return self.issuer.token(tenant, subject, roles)

    def start_worker(self) -> LedgerProcess:
        """One more `mcp-ledger worker` in the stack's consumer groups."""
        worker = start_ledger(self.started, self.env, self.tmp, "worker")
        self.workers.append(worker)
        return worker

    def start_api(self) -> LedgerProcess:
        """One more API replica (it serves once `wait_healthy` returns)."""
        api = start_ledger(self.started, self.env, self.tmp, "api")
        self.apis.append(api)
        return api

    def cli(self, *args: str) -> str:
        """`mcp-ledger ARGS…` with the stack's environment (blocking: seconds of imports)."""
        return ledger_cli(self.env, *args)

    async def erase(self, tenant: str, subject: str) -> dict[str, Any]:
        return await erase_as_admin(self.urls[-1], self.token(tenant, "dpo", ("admin",)), subject)

    async def export(self, tenant: str, subject: str) -> dict[str, Any]:
        settings = Settings(
            store=self.store_url, kek=self.env["LEDGER_KEK"], data_dir=Path(self.env["LEDGER_DATA_DIR"])
        )
        return await export_bundle(settings, tenant, subject)

    async def clear_text(self, needle: str) -> list[str]:
        rows = await postgres_rows_holding(self.store_url, needle)
        keys = await redis_values(self.state_url, self.state_prefix)
        return [
            *(f"postgres table {table}" for table in rows),
            *(f"redis key {key}" for key, value in keys.items() if needle in key or needle in value),
            *(
                f"kafka segment {segment}"
                for segment in kafka_segments(self.topic_prefix)
                if needle.encode() in segment.read_bytes()
            ),
            *(f"log {proc.log.name}" for proc in self.started if needle in proc.output()),
        ]


async def _answers(url: str, token: str) -> None:
    """Bounded: a first call through this replica reaches a worker and comes back (the
    workers have joined their consumer groups)."""
    async with asyncio.timeout(STARTUP_SECONDS):
        while True:
            async with mcp_client(url, mode="2026-07-28", token=token) as client:
                result = await client.call_tool("echo", {"text": "ready"})
            if not result.is_error:
                assert structured(result) == {"text": "ready"}
                return
            await asyncio.sleep(0.5)


async def _delete_topics(bus_url: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bus_url.removeprefix("kafka://"))
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def _distributed_env(migrated: Mapping[str, str], issuer: TokenIssuer, tmp: Path) -> dict[str, str]:
    fragment = name_fragment()
    database = make_url(migrated["LEDGER_STORE"]).set(username=None, password=None)
    return {
        **isolated_env(migrated, fragment, topics="s", keys="stack"),
        "LEDGER_NO_AUTH": "false",
        "LEDGER_SECRET_KEY": _secret(),
        "LEDGER_KEK": _secret(),
        "LEDGER_DATA_DIR": str(tmp / "data"),
        "LEDGER_AUTH_KEYS_FILE": str(issuer.write_jwks(tmp / "jwks.json")),
        "LEDGER_AUTH_ISSUER": issuer.issuer,
        "LEDGER_AUTH_AUDIENCE": issuer.audience,
        "LEDGER_REGISTRY_ALLOWED_HOSTS": "127.0.0.1",
        "LEDGER_DATA_SOURCE_SQLITE_DIR": str(tmp / "sources"),
        "LEDGER_DATA_SOURCE_ALLOWLIST": database.render_as_string(),
    }


@contextmanager
def distributed_stack(
    tmp: Path, *, apis: int = 2, workers: int = 2, extra: Mapping[str, str] | None = None
) -> Iterator[DistributedStack]:
    """A distributed stack in a private database, ready (every replica has answered a call
    when there are workers); stopped, its topics and Redis keys removed, at exit."""
    issuer = TokenIssuer()
    (tmp / "sources").mkdir()
    with private_database(ensure_services()) as migrated:
        env = {**_distributed_env(migrated, issuer, tmp), **(extra or {})}
        try:
            with ledger_processes(env, tmp) as started:
                stack = DistributedStack(issuer, env, tmp, tmp / "sources", started)
                for _ in range(workers):
                    stack.start_worker()
                for _ in range(apis):
                    stack.start_api()
                for api in stack.apis:  # started together: each takes seconds to import
                    api.wait_healthy(timeout=STARTUP_SECONDS)
                if workers:
                    warm_up = stack.token(f"warmup-{secrets.token_hex(4)}", "ops", ("viewer",))
                    for url in stack.urls:
                        asyncio.run(_answers(url, warm_up))
                yield stack
        finally:
            asyncio.run(_delete_topics(env["LEDGER_BUS"], env["LEDGER_TOPIC_PREFIX"]))
            asyncio.run(delete_redis_keys(env["LEDGER_STATE"], env["LEDGER_STATE_PREFIX"]))
