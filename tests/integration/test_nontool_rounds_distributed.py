"""input_required rounds of an upstream's prompts/get and resources/read on the real services
(Kafka, PostgreSQL, Redis; two API replicas and two workers as processes): the round comes
from the replica the agent asked, the retry sent to the other replica completes the waiting
command, and another subject's retry with the captured state is refused."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.support.clients import mcp_client, structured
from tests.support.distributed import DistributedStack
from tests.support.upstream import RunningUpstream
from tests.support.upstream_rounds import rounds_upstream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MODERN = "2026-07-28"
CONTEXT: types.InputResponses = {
    "user_context": types.ElicitResult(action="accept", content={"context": "kafka"})
}


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with rounds_upstream(legacy=False) as running:
        yield running


async def _prompt(url: str, bearer: str, state: str | None = None) -> Any:
    async with mcp_client(url, token=bearer, mode=MODERN) as client:
        try:
            return await client.session.get_prompt(
                "fx_ask_context",
                {},
                input_responses=CONTEXT if state else None,
                request_state=state,
                allow_input_required=True,
            )
        except MCPError as refused:
            return refused


async def test_a_prompt_round_from_one_replica_is_completed_by_the_retry_on_the_other(
    shared_distributed_stack: DistributedStack, upstream: RunningUpstream
) -> None:
    stack = shared_distributed_stack
    tenant = f"rounds-{secrets.token_hex(5)}"
    async with mcp_client(stack.urls[0], token=stack.token(tenant, "root", ("admin",))) as admin:
        registered = {"name": "fixture", "url": upstream.url, "prefix": "fx"}
        structured(await admin.call_tool("register_server", registered))
    alice, mallory = stack.token(tenant, "alice", ("viewer",)), stack.token(tenant, "mallory", ("viewer",))

    first = await _prompt(stack.urls[0], alice)
    assert isinstance(first, types.InputRequiredResult), first
    assert set(first.input_requests or {}) == {"user_context"}
    assert first.request_state
    refused = await _prompt(stack.urls[-1], mallory, first.request_state)
    assert isinstance(refused, MCPError)
    assert refused.error.code == types.INVALID_PARAMS
    finished = await _prompt(stack.urls[-1], alice, first.request_state)
    assert isinstance(finished, types.GetPromptResult), finished
    content = finished.messages[0].content
    assert isinstance(content, types.TextContent)
    assert content.text == "use the context kafka"
    assert upstream.state.calls["ask_context"] == 2
    assert stack.urls[0] != stack.urls[-1]
