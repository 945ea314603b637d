"""The back channel on the real services (Kafka, PostgreSQL, Redis), API replicas and workers
as processes: an upstream's sampling request during a call reaches the agent on the stream of
the replica it called, and the agent's answer, POSTed to the other replica, reaches the worker
holding the call."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.clients import mcp_client, structured, text_of
from tests.support.distributed import DistributedStack
from tests.support.upstream import RunningUpstream, upstream_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with upstream_server() as running:
        yield running


class AnswersElsewhere(httpx2.AsyncBaseTransport):
    """Sends every JSON-RPC response the client POSTs to another replica; the rest as asked."""

    def __init__(self, other: str) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._other = httpx2.URL(other)
        self.rerouted: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            body: Any = json.loads(await request.aread() or b"null")
            if isinstance(body, dict) and "method" not in body and "result" in body:
                self.rerouted.append(str(body["id"]))
                request.url = self._other
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"echo of {text}"), model="fake"
    )


async def test_an_agent_s_answer_posted_to_the_other_replica_reaches_the_upstream(
    shared_distributed_stack: DistributedStack, upstream: RunningUpstream
) -> None:
    stack = shared_distributed_stack
    tenant = f"bc-{secrets.token_hex(5)}"
    async with mcp_client(stack.urls[0], token=stack.token(tenant, "root", ("admin",))) as admin:
        registered = {"name": "fixture", "url": upstream.url, "prefix": "fx"}
        structured(await admin.call_tool("register_server", registered))
    transport = AnswersElsewhere(stack.urls[-1])
    headers = {"authorization": f"Bearer {stack.token(tenant, 'bob', ('viewer',))}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60.0, transport=transport) as http,
        Client(
            streamable_http_client(stack.urls[0], http_client=http), mode="legacy", sampling_callback=sample
        ) as client,
    ):
        result = await client.call_tool("fx_ask_model", {"prompt": "kafka"})
    assert text_of(result) == "model said: echo of kafka"
    assert len(transport.rerouted) == 1
    assert stack.urls[0] != stack.urls[-1]
