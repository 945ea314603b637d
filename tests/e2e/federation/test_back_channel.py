"""The back channel: an upstream's sampling, elicitation and roots requests during a call reach
the agent (an official SDK client with callbacks) and its answers go back to the upstream;
someone else's answer to the same request id is never taken."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream, upstream_server

MODERN = "2026-07-28"


async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"echo of {text}"), model="fake"
    )


async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": f"yes to {params.message}"})


async def roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


CALLBACKS: dict[str, Any] = {
    "sampling_callback": sample,
    "elicitation_callback": elicit,
    "list_roots_callback": roots,
}


async def test_an_upstream_s_sampling_request_reaches_the_agent_and_its_answer_the_upstream(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",)), **CALLBACKS) as client:
        result = await client.call_tool("fx_ask_model", {"prompt": "the sky"})
    assert not result.is_error, result.content
    assert text_of(result) == "model said: echo of the sky"


async def test_an_upstream_s_elicitation_and_roots_requests_reach_the_agent(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",)), **CALLBACKS) as client:
        asked = await client.call_tool("fx_ask_user", {"question": "ship it?"})
        listed = await client.call_tool("fx_ask_roots", {})
    assert text_of(asked) == "user said: yes to ship it?"
    assert text_of(listed) == "file:///work/project"


async def _session(http: httpx.AsyncClient, url: str, bearer: str) -> str:
    """A 2025-11-25 session opened by hand (initialize, initialized)."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    headers = {"authorization": f"Bearer {bearer}", "accept": "application/json, text/event-stream"}
    opened = await http.post(url, json=init, headers=headers)
    session = opened.headers["mcp-session-id"]
    done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await http.post(url, json=done, headers={**headers, "mcp-session-id": session})
    return session


async def test_another_subject_s_answer_to_a_relayed_request_is_not_taken(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    alice, mallory = token(secured, sub="alice", roles=("viewer",)), token(secured, sub="mallory")
    relayed: asyncio.Queue[str] = asyncio.Queue()
    release = asyncio.Event()

    async def slow_sample(context: Any, params: types.CreateMessageRequestParams) -> Any:
        relayed.put_nowait(str(context.request_id))
        async with asyncio.timeout(20):
            await release.wait()
        return await sample(context, params)

    async with httpx.AsyncClient(timeout=30) as http:
        thief = await _session(http, secured.url, mallory)
        async with mcp_client(secured.url, token=alice, sampling_callback=slow_sample) as client:
            call = asyncio.create_task(client.call_tool("fx_ask_model", {"prompt": "secret"}))
            async with asyncio.timeout(20):
                request_id = await relayed.get()
            forged = {
                "jsonrpc": "2.0",
                "id": request_id,
                "result": {
                    "role": "assistant",
                    "content": {"type": "text", "text": "forged"},
                    "model": "evil",
                },
            }
            headers = {
                "authorization": f"Bearer {mallory}",
                "mcp-session-id": thief,
                "accept": "application/json, text/event-stream",
            }
            posted = await http.post(secured.url, json=forged, headers=headers)
            assert posted.status_code == 202  # any replica accepts; the worker checks the subject
            release.set()  # the forged answer travels first on the reply topic
            async with asyncio.timeout(20):
                result = await call
    assert text_of(result) == "model said: echo of secret"
    assert len(request_id) >= 32  # the relayed id is the gateway's, unguessable


async def test_a_2026_agent_that_did_not_declare_sampling_gets_32021_when_the_upstream_needs_it(
    tmp_path: Path,
) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1"}
    )
    async with upstream_server(legacy=False) as modern, gateway(settings) as gw:
        structured(await register(gw, modern))
        async with mcp_client(gw.url, token=token(gw), mode=MODERN) as bare:
            with pytest.raises(MCPError) as refused:
                await bare.call_tool("fx_needs_sampling", {})
        async with mcp_client(gw.url, token=token(gw), mode=MODERN, sampling_callback=sample) as able:
            allowed = await able.call_tool("fx_needs_sampling", {})
    assert refused.value.error.code == -32021
    assert refused.value.error.data == {"requiredCapabilities": {"sampling": {}}}
    assert text_of(allowed) == "sampling declared"
