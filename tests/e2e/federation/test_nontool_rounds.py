"""input_required rounds of prompts/get and resources/read for 2026-07-28 agents (SEP-2322): an
upstream's round reaches the agent under the upstream's own key with a requestState the
gateway sealed, the agent's retry completes the waiting command (the upstream continued once,
never replayed), and another subject's retry with a captured state continues nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream
from tests.support.upstream_rounds import rounds_upstream

MODERN = "2026-07-28"
CONTEXT: types.InputResponses = {
    "user_context": types.ElicitResult(action="accept", content={"context": "ledger"})
}
URI = "fixture://asked/notes"


@pytest.fixture
async def modern(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, RunningUpstream]]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1", "upstream_input_wait": 3.0}
    )
    async with rounds_upstream(legacy=False) as upstream, gateway(settings) as gw:
        structured(await register(gw, upstream))
        yield gw, upstream


async def _prompt(gw: RunningGateway, bearer: str, state: str | None = None) -> Any:
    """prompts/get of the asking prompt (a retry with `state`); the MCPError it was refused with."""
    async with mcp_client(gw.url, token=bearer, mode=MODERN) as client:
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


async def _read(gw: RunningGateway, bearer: str, state: str | None = None) -> Any:
    async with mcp_client(gw.url, token=bearer, mode=MODERN) as client:
        try:
            return await client.session.read_resource(
                URI,
                input_responses=CONTEXT if state else None,
                request_state=state,
                allow_input_required=True,
            )
        except MCPError as refused:
            return refused


def _sealed_round(result: Any) -> str:
    assert isinstance(result, types.InputRequiredResult), result
    assert set(result.input_requests or {}) == {"user_context"}  # the upstream's own key
    assert result.request_state
    assert "ask_context" not in result.request_state
    return result.request_state


async def test_an_upstream_prompt_s_round_reaches_the_agent_and_its_retry_completes_the_prompt(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern
    alice = token(gw, sub="alice", roles=("viewer",))
    state = _sealed_round(await _prompt(gw, alice))
    finished = await _prompt(gw, alice, state)
    assert isinstance(finished, types.GetPromptResult), finished
    content = finished.messages[0].content
    assert isinstance(content, types.TextContent)
    assert content.text == "use the context ledger"
    assert upstream.state.calls["ask_context"] == 2  # asked once, continued once


async def test_an_upstream_resource_s_round_reaches_the_agent_and_its_retry_completes_the_read(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern
    alice = token(gw, sub="alice", roles=("viewer",))
    state = _sealed_round(await _read(gw, alice))
    finished = await _read(gw, alice, state)
    assert isinstance(finished, types.ReadResourceResult), finished
    contents = finished.contents[0]
    assert isinstance(contents, types.TextResourceContents)
    assert contents.text == "notes in the context ledger"
    assert upstream.state.calls["asked"] == 2


async def test_the_sdk_s_own_driver_completes_an_upstream_prompt_through_the_gateway(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, _ = modern

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"context": "driven"})

    async with mcp_client(gw.url, token=token(gw), mode=MODERN, elicitation_callback=elicit) as client:
        result = await client.get_prompt("fx_ask_context", {})
    content = result.messages[0].content
    assert isinstance(content, types.TextContent)
    assert content.text == "use the context driven"


async def test_another_subject_s_retry_of_a_prompt_round_is_refused(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern
    alice, mallory = token(gw, sub="alice", roles=("viewer",)), token(gw, sub="mallory", roles=("viewer",))
    state = _sealed_round(await _prompt(gw, alice))
    refused = await _prompt(gw, mallory, state)
    assert isinstance(refused, MCPError)
    assert refused.error.code == types.INVALID_PARAMS
    assert upstream.state.calls["ask_context"] == 1  # the waiting command was not continued


async def test_a_prompt_round_s_state_does_not_continue_a_resource_read(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern
    alice = token(gw, sub="alice", roles=("viewer",))
    state = _sealed_round(await _prompt(gw, alice))
    refused = await _read(gw, alice, state)
    assert isinstance(refused, MCPError)
    assert refused.error.code == types.INVALID_PARAMS
    assert upstream.state.calls["asked"] == 0
