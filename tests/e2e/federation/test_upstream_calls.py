"""Upstream MCP servers behind the embedded gateway (auth on): listing and calls, with the
official client on both sides (the fixture upstream speaks real MCP over HTTP), recorded
and sealed like every call, and erased with their subject."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.federation.steps import FIXTURE_TOOLS, opened_events, register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway
from tests.support.files import files_containing
from tests.support.token_server import token_server
from tests.support.upstream import RunningUpstream


async def test_a_registered_upstream_s_tools_are_listed_with_their_annotations_and_meta(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    registered = structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(registered["exposed"]) == {f"fx_{name}" for name in FIXTURE_TOOLS}
    echo = tools["fx_echo"]
    assert echo.annotations is not None
    assert echo.annotations.read_only_hint
    assert echo.meta == {"fixture": "echo"}
    assert echo.description == "Return the text unchanged."
    assert tools["fx_slow"].input_schema["required"] == ["steps"]


async def test_calls_reach_the_upstream_and_keep_content_types_and_errors(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        echoed = await client.call_tool("fx_echo", {"text": "hello upstream"})
        picture = await client.call_tool("fx_picture", {})
        failed = await client.call_tool("fx_fails", {})
    assert text_of(echoed) == "hello upstream"
    assert echoed.structured_content == {"result": "hello upstream"}
    assert [block.type for block in picture.content] == ["image", "text"]
    image = picture.content[0]
    assert isinstance(image, types.ImageContent)
    assert image.mime_type == "image/png"
    assert failed.is_error
    assert "always fails" in text_of(failed)
    assert upstream.state.calls["echo"] == 1


async def test_an_upstream_call_is_recorded_once_and_its_arguments_are_sealed_in_the_store(
    secured: RunningGateway, upstream: RunningUpstream, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, sub="bob", roles=("viewer",))) as client:
        assert text_of(await client.call_tool("fx_echo", {"text": marker})) == marker
    events = await opened_events(secured)
    calls = [
        e
        for e in events
        if e.event_type in {"ToolCalled", "ToolSucceeded"} and e.data["tool_name"] == "fx_echo"
    ]
    assert [e.event_type for e in calls] == ["ToolCalled", "ToolSucceeded"]
    assert calls[0].data["arguments"] == {"text": marker}
    assert files_containing(tmp_path, marker) == []  # the database files never held it in the clear


async def test_erasing_a_subject_erases_the_content_of_their_upstream_calls(
    secured: RunningGateway, upstream: RunningUpstream, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, sub="bob", roles=("viewer",))) as client:
        assert text_of(await client.call_tool("fx_echo", {"text": marker})) == marker
    assert marker in repr([e.data for e in await opened_events(secured)])
    base = secured.url.removesuffix("/mcp")
    async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {token(secured)}"}) as http:
        answer = await http.post(f"{base}/admin/erasures", json={"subject": "bob"})
    assert answer.status_code == 200, answer.text
    assert marker not in repr([e.data for e in await opened_events(secured)])
    assert files_containing(tmp_path, marker) == []


async def test_a_static_bearer_reaches_the_upstream_sealed_and_the_agent_s_token_never_does(
    secured: RunningGateway, upstream: RunningUpstream, tmp_path: Path
) -> None:
    secret = f"upstream-secret-{uuid.uuid4().hex}"
    structured(await register(secured, upstream, auth={"kind": "bearer", "secret": secret}))
    agent = token(secured, roles=("viewer",))
    async with mcp_client(secured.url, token=agent) as client:
        seen = text_of(await client.call_tool("fx_headers", {}))
    async with mcp_client(secured.url, token=token(secured)) as admin:
        listed = structured(await admin.call_tool("list_servers", {}))
    assert seen == f"Bearer {secret}"
    assert agent not in repr(upstream.state.auth_seen)
    assert secret not in repr(listed)
    assert listed["servers"][0]["auth"] == "bearer"
    assert files_containing(tmp_path, secret) == []


async def test_upstream_progress_reaches_the_agent_on_its_request(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        result = await client.call_tool("fx_slow", {"steps": 3}, progress_callback=progress)
    assert text_of(result) == "done after 3 steps"
    assert seen == [(1.0, 3.0, "step 1"), (2.0, 3.0, "step 2"), (3.0, 3.0, "step 3")]


async def test_upstream_resources_and_prompts_are_listed_read_and_recorded(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        read = await client.read_resource("fixture://readme")
        prompt = await client.get_prompt("fx_greet", {"name": "Ada"})
    assert "fixture://readme" in resources
    assert "fx_greet" in prompts
    contents = read.contents[0]
    assert isinstance(contents, types.TextResourceContents)
    assert contents.text == "fixture upstream"
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent)
    assert message.text == "Hello Ada"
    recorded = [e.data["tool_name"] for e in await opened_events(secured) if e.event_type == "ToolSucceeded"]
    assert {"upstream_resource_read", "upstream_prompt_get"} <= set(recorded)


async def test_upstream_log_notifications_reach_the_agent_on_a_tool_call_without_a_progress_token(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    logged: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params)

    headers = {"authorization": f"Bearer {token(secured, roles=('viewer',))}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(secured.url, http_client=http),
            mode="legacy",
            logging_callback=on_log,
        ) as client,
    ):
        result = await client.call_tool("fx_slow", {"steps": 1})  # streamed: a tool call
    assert not result.is_error
    assert [(entry.level, entry.data) for entry in logged] == [("info", "slow: 1 steps")]


async def test_completion_of_an_upstream_prompt_argument_is_forwarded(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
        completed = await client.complete(
            types.PromptReference(type="ref/prompt", name="fx_greet"), {"name": "name", "value": "A"}
        )
        own = await client.complete(
            types.PromptReference(type="ref/prompt", name="plan_goal"), {"name": "goal", "value": "x"}
        )
    assert completed.completion.values == ["Ada", "Alan"]
    assert own.completion.values == []


async def test_oauth_client_credentials_reach_the_upstream_cached_and_the_client_secret_sealed(
    secured: RunningGateway, upstream: RunningUpstream, tmp_path: Path
) -> None:
    secret = f"client-secret-{uuid.uuid4().hex}"
    async with token_server("gateway", secret) as issuer:
        auth = issuer.auth()
        structured(await register(secured, upstream, auth=auth))
        async with mcp_client(secured.url, token=token(secured, roles=("viewer",))) as client:
            first = text_of(await client.call_tool("fx_headers", {}))
            second = text_of(await client.call_tool("fx_headers", {}))
        wrong = await register(secured, upstream, name="wrong", prefix="wr", auth={**auth, "secret": "nope"})
    assert first == second
    assert first.startswith("Bearer token-")
    assert issuer.issued == 2  # one for discovery, one for the calls' session
    assert wrong.is_error
    assert "token endpoint answered HTTP 401" in text_of(wrong)
    assert files_containing(tmp_path, secret) == []


async def test_an_upstream_tool_runs_as_a_pipeline_stage_recorded_like_a_call(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    stages = {"stages": [{"tool": "fx_echo", "arguments": {"text": "piped"}}]}
    async with mcp_client(secured.url, token=token(secured, roles=("operator",))) as client:
        result = await client.call_tool("run_pipeline", stages)
    assert not result.is_error, text_of(result)
    assert "piped" in str(result.structured_content)
    assert upstream.state.calls["echo"] == 1
