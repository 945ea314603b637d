"""The OpenAI-compatible planner endpoint (LEDGER_PLANNER_URL), against a real local HTTP
server that answers chat completions: bad answers are re-asked with the problems found."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.chat_server import ChatServer, chat_server
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import embedded_settings, gateway


@pytest.fixture
async def chat() -> AsyncIterator[tuple[ChatServer, str]]:
    async with chat_server() as served:
        yield served


async def test_the_endpoint_planner_is_reasked_until_its_plan_is_valid(
    tmp_path: Path, chat: tuple[ChatServer, str]
) -> None:
    server, url = chat
    good = {"tasks": [{"id": "say", "tool_name": "echo", "parameters": {"text": "from the endpoint"}}]}
    server.answers += [
        json.dumps({"tasks": [{"id": "a", "tool_name": "echo", "parameters": {}}]}),
        json.dumps(good),
    ]
    settings = embedded_settings(tmp_path).model_copy(
        update={"planner_url": url, "planner_model": "local-test", "planner_api_key": "k-123"}
    )
    async with gateway(settings) as running, mcp_client(running.url) as client:
        created = structured(await client.call_tool("create_plan", {"goal": "say it", "execute": True}))
        status = structured(
            await client.call_tool("plan_status", {"plan_id": created["plan_id"], "wait_seconds": 10})
        )
    assert status["tasks"]["say"]["output"] == {"text": "from the endpoint"}
    assert len(server.requests) == 2
    first, second = (request["body"] for request in server.requests)
    assert first["model"] == "local-test"
    assert server.requests[0]["auth"] == "Bearer k-123"
    assert "say it" in first["messages"][1]["content"]
    assert "'text' is a required property" in second["messages"][1]["content"]


async def test_an_endpoint_that_never_gives_a_valid_plan_ends_in_a_clear_error(
    tmp_path: Path, chat: tuple[ChatServer, str]
) -> None:
    server, url = chat
    server.answers += ["sorry"] * 5
    settings = embedded_settings(tmp_path).model_copy(update={"planner_url": url})
    async with gateway(settings) as running, mcp_client(running.url) as client:
        result = await client.call_tool("create_plan", {"goal": "anything"})
    assert result.is_error
    assert "refused 3 times" in text_of(result)
    assert len(server.requests) == 3
