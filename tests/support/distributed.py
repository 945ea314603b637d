"""The distributed stack: API replicas and workers as `mcp-ledger api` / `worker` processes on
the real Kafka, PostgreSQL and Redis, with auth on.

Owns starting one: a private database migrated to this tree's head, its own topics,
consumer groups and Redis keys (named after a fresh fragment), a fresh KEK and secret the
processes share, the test issuer's JWKS as their only trusted keys; ready once every
replica has answered a call through a worker. At exit the processes stop and the topics,
keys and database are removed. The `Stack` operations are tests/support/stacks.py's.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.settings import Settings
from tests.integration.services import ensure_services, name_fragment
from tests.support.clients import mcp_client, structured
from tests.support.issuer import TokenIssuer
from tests.support.processes import REPO, LedgerProcess, isolated_env, ledger_processes, start_ledger
from tests.support.scans import delete_redis_keys, kafka_segments, postgres_rows_holding, redis_values
from tests.support.stacks import erase_as_admin, export_bundle

STARTUP_SECONDS = 180.0
"""How long a process may take to serve: the processes of several test runs share two cores."""


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


def _secret() -> str:
    return base64.b64encode(new_key()).decode()


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


async def delete_topics(bus_url: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bus_url.removeprefix("kafka://"))
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def _database_admin(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")  # CREATE DATABASE needs it
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def _private_database(services: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The services with LEDGER_STORE naming a fresh database migrated to this tree's head
    (in this process: a `mcp-ledger migrate` would cost seconds of imports); dropped at exit."""
    name = f"ledger_stack_{secrets.token_hex(6)}"
    shared = services["LEDGER_STORE"]
    asyncio.run(_database_admin(shared, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(shared).set(database=name).render_as_string(hide_password=False)
        upgrade_to_head(url)
        yield {**services, "LEDGER_STORE": url}
    finally:
        asyncio.run(_database_admin(shared, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
        "LEDGER_DRAIN_TIMEOUT": "5",  # stopping the stack waits for nothing in flight
    }


@contextmanager
def distributed_stack(
    tmp: Path, *, apis: int = 2, workers: int = 2, extra: Mapping[str, str] | None = None
) -> Iterator[DistributedStack]:
    """A distributed stack in a private database, ready (every replica has answered a call
    when there are workers); stopped, its topics and Redis keys removed, at exit."""
    issuer = TokenIssuer()
    (tmp / "sources").mkdir()
    with _private_database(ensure_services()) as migrated:
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
            asyncio.run(delete_topics(env["LEDGER_BUS"], env["LEDGER_TOPIC_PREFIX"]))
            asyncio.run(delete_redis_keys(env["LEDGER_STATE"], env["LEDGER_STATE_PREFIX"]))
