"""The gateway under test, on either stack, with auth on and real tokens.

One body of assertions runs against every stack the way eventsourcing runs one application
test on every recorder. `Stack` is what such a test needs; its two implementations:

- `EmbeddedStack` (here): API and worker in the test's event loop, in-process bus, SQLite and
  blob files in a data directory, in-memory views (what `mcp-ledger serve` runs by default);
- `DistributedStack` (tests/support/distributed.py): API replicas and workers as processes on
  the real Kafka, PostgreSQL and Redis.

Both trust one `TokenIssuer` (`LEDGER_AUTH_KEYS_FILE`, issuer, audience) and nothing else;
neither runs with `--no-auth`. A stack says where its data lives so tests can read it the
way someone holding its disks would (`clear_text`), erases the product's way (a tenant
admin's `POST /admin/erasures`: embedded it runs in the process, distributed it goes through
ledger.compliance to the workers) and exports what `mcp-ledger export` writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx

from mcp_ledger.consumers.compliance.export import export_subject
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import open_key_store
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.issuer import TokenIssuer
from tests.support.scans import files_holding


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
