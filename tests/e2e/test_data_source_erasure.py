"""A connected data source's DSN (it may hold credentials) is personal data: it is sealed in
the event store (no file of the data directory holds it, WAL included), absent from the
registry view, and unusable once its subject is erased (tests/unit/registry/
test_data_source_secrets.py shows the worker side of that)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.support.clients import mcp_client, open_session, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.files import files_containing


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    # The data sources live outside the gateway's data directory: they are the user's files.
    settings = embedded_settings(tmp_path / "gateway").model_copy(
        update={"data_source_sqlite_dir": tmp_path / "sources"}
    )
    async with gateway(settings) as running_gateway:
        yield running_gateway


def _database(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            "INSERT INTO customers VALUES (1, 'Ada');"
        )
    return f"sqlite+aiosqlite:///{path}"


async def test_a_dsn_is_sealed_kept_out_of_the_view_and_unusable_after_erasure(
    embedded: RunningGateway, tmp_path: Path
) -> None:
    marker = f"dsnmarker{uuid.uuid4().hex}"
    dsn = _database(tmp_path / "sources" / f"{marker}.db")
    session_id = await open_session(embedded.url)
    async with mcp_client(embedded.url, session=session_id) as client:
        await client.call_tool("connect_data_source", {"name": "shop", "dsn": dsn})
        ada = structured(await client.call_tool("shop_customers_read", {"id": 1}))
    settings = embedded.runtime.settings
    view = await embedded.runtime.registry_views.get(settings.local_tenant, session_id)
    assert ada == {"found": True, "row": {"id": 1, "name": "Ada"}}
    assert view is not None
    assert "shop" in view.data_sources
    assert marker not in view.model_dump_json()
    data_dir = settings.data_dir
    # The search sees the connection just recorded (its tool names are in the clear) in the WAL…
    assert data_dir / "ledger.db-wal" in files_containing(data_dir, "shop_customers_read")
    assert files_containing(data_dir, marker) == []  # …and no file holds the DSN

    async with httpx.AsyncClient(timeout=30) as http:
        erased = await http.post(
            embedded.url.removesuffix("/mcp") + "/admin/erasures", json={"subject": settings.local_subject}
        )
    assert erased.status_code == 200, erased.text

    async with mcp_client(embedded.url, session=session_id) as client:
        with pytest.raises(MCPError, match="Unknown tool"):  # the erased session's tools are gone
            await client.call_tool("shop_customers_read", {"id": 1})
    assert files_containing(data_dir, marker) == []
