"""OAuth 2.1, sessions, pointers and sealed state against a gateway with auth on, over HTTP.

The attack suite: bad tokens, foreign sessions, tampered, replayed and foreign pointers and
sealed state. Every attack must leave zero tool executions behind.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.settings import Settings
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import bad_tokens, good_token


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running_gateway:
        yield running_gateway


def _token(gw: RunningGateway, **kwargs: object) -> str:
    return good_token(gw.runtime.settings, **kwargs)  # type: ignore[arg-type]


async def _executions(settings: Settings) -> list[tuple[str, str]]:
    """(event type, tool) of every tool that ran, apart from opening and closing sessions
    (which every 2025-11-25 client's initialize and DELETE do)."""
    store = await open_event_store(settings.store_url)
    try:
        events = await store.read_all()
    finally:
        await store.close()
    lifecycle = {"session_open", "session_close"}
    return [
        (e.event_type, str(e.data.get("tool_name")))
        for e in events
        if e.event_type == "ToolSucceeded" and e.data.get("tool_name") not in lifecycle
    ]


async def test_anonymous_requests_get_401_pointing_at_the_resource_metadata(secured: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(secured.url, json=INITIALIZE, headers=JSON_RPC_HEADERS)
        metadata_url = response.headers["www-authenticate"].split('resource_metadata="')[1].rstrip('"')
        base = secured.url.removesuffix("/mcp")
        metadata = (await http.get(base + "/.well-known/oauth-protected-resource/mcp")).json()
    assert response.status_code == 401
    assert metadata_url.endswith("/.well-known/oauth-protected-resource/mcp")
    assert metadata["resource"] == secured.runtime.settings.mcp_url
    assert metadata["authorization_servers"]


@pytest.mark.parametrize(
    "name", ["forged", "expired", "wrong_audience", "alg_none", "hs256_confusion", "no_tenant"]
)
async def test_a_bad_token_is_refused_and_runs_nothing(secured: RunningGateway, name: str) -> None:
    token = bad_tokens(secured.runtime.settings)[name]
    async with httpx.AsyncClient() as http:
        response = await http.post(
            secured.url, json=INITIALIZE, headers={**JSON_RPC_HEADERS, "authorization": f"Bearer {token}"}
        )
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "x"}},
        }
        stateless = await http.post(
            secured.url,
            json=call,
            headers={
                **JSON_RPC_HEADERS,
                "authorization": f"Bearer {token}",
                "mcp-protocol-version": "2026-07-28",
            },
        )
    assert response.status_code == 401
    assert stateless.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert await _executions(secured.runtime.settings) == []


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_valid_token_is_the_caller_in_both_eras(secured: RunningGateway, mode: str) -> None:
    async with mcp_client(
        secured.url, mode=mode, token=_token(secured, sub="bob", tenant="globex")
    ) as client:
        opened = structured(await client.call_tool("session_open", {}))
    view = await secured.runtime.views.get("globex", opened["session_id"])
    assert view is not None
    assert view.subject == "bob"


async def test_a_session_of_one_tenant_is_unusable_and_unreadable_from_another(
    secured: RunningGateway,
) -> None:
    async with mcp_client(secured.url, token=_token(secured, sub="alice", tenant="acme")) as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
        await client.call_tool("note_set", {"key": "secret", "value": "alice-only"})
    before = await _executions(secured.runtime.settings)
    for sub, tenant in (("alice", "globex"), ("mallory", "acme")):
        token = _token(secured, sub=sub, tenant=tenant)
        async with mcp_client(secured.url, session=session_id, token=token) as client:
            result = await client.call_tool("note_get", {"key": "secret"})
            with pytest.raises(MCPError, match="unknown resource"):
                await client.read_resource(f"ledger://sessions/{session_id}")
        assert result.is_error
        assert text_of(result) == "unknown_session: unknown session"
    assert await _executions(secured.runtime.settings) == before


async def test_an_mcp_session_id_is_fresh_bound_to_its_subject_and_ends_with_delete(
    secured: RunningGateway,
) -> None:
    alice = {**JSON_RPC_HEADERS, "authorization": f"Bearer {_token(secured, sub='alice')}"}
    mallory = {**JSON_RPC_HEADERS, "authorization": f"Bearer {_token(secured, sub='mallory')}"}
    ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
    async with httpx.AsyncClient() as http:
        chosen = await http.post(
            secured.url, json=INITIALIZE, headers={**alice, "mcp-session-id": "attacker-chosen-id"}
        )
        first = await http.post(secured.url, json=INITIALIZE, headers=alice)
        session_id = first.headers["mcp-session-id"]
        again = await http.post(secured.url, json=INITIALIZE, headers=alice)
        foreign = await http.post(secured.url, json=ping, headers={**mallory, "mcp-session-id": session_id})
        own = await http.post(secured.url, json=ping, headers={**alice, "mcp-session-id": session_id})
        deleted = await http.delete(secured.url, headers={**alice, "mcp-session-id": session_id})
        after = await http.post(secured.url, json=ping, headers={**alice, "mcp-session-id": session_id})
    assert chosen.status_code == 404  # a client-chosen id is never adopted
    assert again.headers["mcp-session-id"] != session_id
    assert len(session_id) >= 22
    assert (foreign.status_code, own.status_code, deleted.status_code, after.status_code) == (
        404,
        200,
        204,
        404,
    )


async def test_the_get_stream_replays_missed_notifications_after_last_event_id(
    secured: RunningGateway,
) -> None:
    headers = {**JSON_RPC_HEADERS, "authorization": f"Bearer {_token(secured)}"}
    async with httpx.AsyncClient(timeout=10) as http:
        session_id = (await http.post(secured.url, json=INITIALIZE, headers=headers)).headers[
            "mcp-session-id"
        ]
        subscribe = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "resources/subscribe",
            "params": {"uri": f"ledger://sessions/{session_id}"},
        }
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "note_set", "arguments": {"key": "k", "value": 1}},
        }
        for request in (subscribe, call):
            await http.post(secured.url, json=request, headers={**headers, "mcp-session-id": session_id})
        stream_headers = {
            **headers,
            "mcp-session-id": session_id,
            "last-event-id": "0",
            "accept": "text/event-stream",
        }
        async with http.stream("GET", secured.url, headers=stream_headers) as stream:
            lines: list[str] = []
            async for line in stream.aiter_lines():
                lines.append(line)
                if line.startswith("data:") and "resources/updated" in line:
                    break
    ids = [line for line in lines if line.startswith("id: ")]
    data = json.loads(next(line for line in lines if line.startswith("data:"))[5:])
    assert ids
    assert int(ids[0][4:]) > 0
    assert data["params"]["uri"] == f"ledger://sessions/{session_id}"


async def _pointer(client: Client, *, one_time: bool = False) -> str:
    result = await client.call_tool(
        "blob_put", {"name": "report.txt", "text": "quarterly", "one_time": one_time}
    )
    links = [block for block in result.content if isinstance(block, types.ResourceLink)]
    assert len(links) == 1
    return str(links[0].uri)


async def test_a_pointer_reads_back_for_its_owner_and_refuses_everyone_else(secured: RunningGateway) -> None:
    async with mcp_client(secured.url, token=_token(secured, sub="alice")) as client:
        session_id = structured(await client.call_tool("session_open", {}))["session_id"]
    async with mcp_client(secured.url, session=session_id, token=_token(secured, sub="alice")) as client:
        uri = await _pointer(client)
        once = await _pointer(client, one_time=True)
        read = await client.read_resource(uri)
        first = await client.read_resource(once)
        with pytest.raises(MCPError, match="already read"):
            await client.read_resource(once)
        with pytest.raises(MCPError, match="altered"):
            await client.read_resource(uri.replace("&sig=", "&sig=A"))
    async with mcp_client(secured.url, token=_token(secured, sub="alice")) as client:
        with pytest.raises(MCPError, match="another session"):
            await client.read_resource(uri)
    async with mcp_client(secured.url, session=session_id, token=_token(secured, sub="mallory")) as client:
        with pytest.raises(MCPError, match="someone else"):
            await client.read_resource(uri)
    contents = read.contents[0]
    assert isinstance(contents, types.TextResourceContents)
    assert contents.text == "quarterly"
    assert isinstance(first.contents[0], types.TextResourceContents)


async def test_sealed_state_opens_only_for_its_subject_and_unaltered(secured: RunningGateway) -> None:
    async with mcp_client(secured.url, token=_token(secured, sub="alice")) as client:
        sealed = structured(await client.call_tool("state_seal", {"state": {"cart": [1, 2]}}))["sealed"]
        opened = structured(await client.call_tool("state_open", {"sealed": sealed}))
        tampered = await client.call_tool("state_open", {"sealed": sealed[:-3] + "AAA"})
    async with mcp_client(secured.url, token=_token(secured, sub="mallory")) as client:
        foreign = await client.call_tool("state_open", {"sealed": sealed})
    assert opened == {"state": {"cart": [1, 2]}}
    assert "cart" not in sealed
    assert tampered.is_error
    assert text_of(tampered).startswith("tampered")
    assert foreign.is_error
    assert text_of(foreign).startswith("tampered")


async def test_a_caller_without_the_minimum_role_is_denied_recorded_and_nothing_runs(
    secured: RunningGateway,
) -> None:
    async with mcp_client(secured.url, token=_token(secured, roles=())) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        denied = await client.call_tool("state_seal", {"state": {"x": 1}})
    store = await open_event_store(secured.runtime.settings.store_url)
    try:
        recorded = [e for e in await store.read_all() if e.event_type == "ToolCallDenied"]
    finally:
        await store.close()
    assert "state_seal" not in names
    assert "echo" in names
    assert denied.is_error
    assert text_of(denied).startswith("forbidden: this tool needs the role 'viewer'")
    assert [e.data["tool_name"] for e in recorded] == ["state_seal"]
    assert await _executions(secured.runtime.settings) == []


async def test_log_messages_reach_the_session_stream_at_the_level_the_client_set(
    secured: RunningGateway,
) -> None:
    headers = {**JSON_RPC_HEADERS, "authorization": f"Bearer {_token(secured)}"}

    def request(method: str, params: dict[str, object], ident: int) -> dict[str, object]:
        return {"jsonrpc": "2.0", "id": ident, "method": method, "params": params}

    async with httpx.AsyncClient(timeout=10) as http:
        first = await http.post(secured.url, json=INITIALIZE, headers=headers)
        on_session = {**headers, "mcp-session-id": first.headers["mcp-session-id"]}
        assert "logging" in first.json()["result"]["capabilities"]
        level = await http.post(
            secured.url, json=request("logging/setLevel", {"level": "info"}, 2), headers=on_session
        )
        echo = request("tools/call", {"name": "echo", "arguments": {"text": "private words"}}, 3)
        async with http.stream(
            "GET", secured.url, headers={**on_session, "accept": "text/event-stream"}
        ) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == ": listening"
            await http.post(secured.url, json=echo, headers=on_session)
            logged = None
            async for line in lines:
                if line.startswith("data:") and "notifications/message" in line:
                    logged = json.loads(line[5:])
                    break
        without_session = await http.post(
            secured.url, json=request("logging/setLevel", {"level": "info"}, 4), headers=headers
        )
    assert level.json()["result"] == {}
    assert logged is not None
    assert logged["params"]["level"] == "info"
    assert logged["params"]["data"]["tool"] == "echo"
    assert "private words" not in json.dumps(logged)
    assert "error" in without_session.json()
