"""The audit log as an MCP resource, read with the official client from the embedded gateway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.mcp_api.audit import AuditFilters, AuditResource, parse_filters
from mcp_ledger.mcp_api.auth.identity import Identity
from tests.support.clients import mcp_client
from tests.support.embedded import RunningGateway, embedded_settings, gateway


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path)) as running_gateway:
        yield running_gateway


def _json(result: types.ReadResourceResult) -> Any:
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    return json.loads(content.text)


async def test_an_auditor_reads_tool_calls_by_tool_with_their_content_sealed(
    embedded: RunningGateway,
) -> None:
    async with mcp_client(embedded.url) as client:
        await client.call_tool("echo", {"text": "private words"})
        templates = (await client.list_resource_templates()).resource_templates
        found = _json(await client.read_resource("ledger://audit?tool=echo"))
        chain = _json(await client.read_resource("ledger://audit/verify"))
    assert "audit log" in [template.name for template in templates]
    assert [event["event_type"] for event in found["events"]] == ["ToolCalled", "ToolSucceeded"]
    assert found["events"][0]["data"]["arguments"] == "[sealed]"
    assert found["events"][0]["subject"] == embedded.runtime.settings.local_subject
    assert "private words" not in json.dumps(found)
    assert chain["first_broken"] is None
    assert chain["checked"] >= 2  # the echo call, plus the session its 2025-11-25 client opened


class NoReader:
    async def search(self, tenant: str, filters: AuditFilters) -> list[dict[str, Any]]:
        raise AssertionError("a refused caller must not reach the log")

    async def verify(self, tenant: str) -> dict[str, Any]:
        raise AssertionError("a refused caller must not reach the log")


async def test_callers_without_an_auditor_role_are_refused() -> None:
    resource = AuditResource(NoReader())
    with pytest.raises(MCPError, match="auditor"):
        await resource.read(Identity("acme", "eve", ("operator",)), "ledger://audit")


def test_audit_filters_are_read_from_the_uri_and_checked() -> None:
    filters = parse_filters("ledger://audit?subject=alice&tool=echo&since=2026-01-01T00:00:00&limit=5")
    assert (filters.subject, filters.tool_name, filters.limit) == ("alice", "echo", 5)
    assert filters.since is not None
    assert filters.since.tzinfo is not None
    with pytest.raises(MCPError):
        parse_filters("ledger://audit?limit=0")
    with pytest.raises(MCPError):
        parse_filters("ledger://audit?since=yesterday")
