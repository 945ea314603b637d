"""CCPA opt-out end to end: the subject opts out through MCP, a third-party HTTP tool then
refuses their calls (the service never sees them) while a first-party tool still runs; an
admin opts them back in through POST /admin/opt-outs; auditors see every step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.eventstore.sql import open_event_store
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.pet_service import PetService, pet_service


@pytest.fixture
async def pets() -> AsyncIterator[PetService]:
    async with pet_service() as service:
        yield service


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path).model_copy(update={"registry_allowed_hosts": "127.0.0.1"})
    async with gateway(settings) as running_gateway:
        yield running_gateway


def _get_pet(name: str, base_url: str, recipient: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "A pet by id.",
        "input_schema": {
            "type": "object",
            "properties": {"petId": {"type": "integer"}},
            "required": ["petId"],
        },
        "binding": {
            "kind": "http",
            "method": "GET",
            "base_url": base_url,
            "path": "/pets/{petId}",
            "parameters": {"petId": "path"},
        },
        "data_recipient": recipient,
    }


async def _admin_opt_out(url: str, subject: str, opt_out: bool) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            url.removesuffix("/mcp") + "/admin/opt-outs", json={"subject": subject, "opt_out": opt_out}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body, dict)
    return body


async def test_an_opted_out_subjects_calls_never_reach_a_third_party(
    embedded: RunningGateway, pets: PetService
) -> None:
    tools = [
        _get_pet("vendor_pet", pets.base_url, "third_party"),
        _get_pet("own_pet", pets.base_url, "first_party"),
    ]
    subject = embedded.runtime.settings.local_subject
    async with mcp_client(embedded.url) as client:
        structured(await client.call_tool("register_tools", {"tools": tools}))
        assert structured(await client.call_tool("vendor_pet", {"petId": 1})) == {"id": 1, "name": "Rex"}
        assert structured(await client.call_tool("privacy_opt_out", {})) == {
            "subject": subject,
            "opted_out": True,
        }
        refused = await client.call_tool("vendor_pet", {"petId": 1})
        first_party = structured(await client.call_tool("own_pet", {"petId": 1}))
    assert refused.is_error
    assert "opted out" in text_of(refused)
    assert first_party == {"id": 1, "name": "Rex"}
    assert pets.hits["get_pet"] == 2  # the refused call never left the gateway

    assert await _admin_opt_out(embedded.url, subject, False) == {"subject": subject, "opted_out": False}
    async with mcp_client(embedded.url) as client:
        assert structured(await client.call_tool("vendor_pet", {"petId": 1})) == {"id": 1, "name": "Rex"}
    assert pets.hits["get_pet"] == 3

    store = await open_event_store(embedded.runtime.settings.store_url)
    try:
        recorded = [(e.event_type, e.data.get("error_code")) for e in await store.read_all(limit=10_000)]
    finally:
        await store.close()
    privacy = [t for t, _ in recorded if t in {"SubjectOptedOut", "SubjectOptedIn", "SharingRefused"}]
    assert privacy == ["SubjectOptedOut", "SharingRefused", "SubjectOptedIn"]
    assert ("ToolFailed", "opted_out") in recorded
