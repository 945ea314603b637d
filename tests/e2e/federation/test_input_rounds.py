"""input_required rounds for 2026-07-28 agents: an upstream's round reaches the agent under the
upstream's own keys, the agent's retry continues the waiting call, and a captured or tampered
requestState continues nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream, upstream_server

MODERN = "2026-07-28"
NAME: types.InputResponses = {"user_name": types.ElicitResult(action="accept", content={"name": "Ada"})}


async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Grace"})


@pytest.fixture
async def modern(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, RunningUpstream]]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1", "upstream_input_wait": 3.0}
    )
    async with upstream_server(legacy=False) as upstream, gateway(settings) as gw:
        structured(await register(gw, upstream))
        yield gw, upstream


async def _first_round(gw: RunningGateway, bearer: str) -> types.InputRequiredResult:
    async with mcp_client(gw.url, token=bearer, mode=MODERN, elicitation_callback=elicit) as client:
        first = await client.session.call_tool("fx_ask_name", {}, allow_input_required=True)
    assert isinstance(first, types.InputRequiredResult), first
    return first


async def _retry(gw: RunningGateway, bearer: str, state: str | None) -> Any:
    """The retry's result, or the MCPError it was refused with."""
    async with mcp_client(gw.url, token=bearer, mode=MODERN, elicitation_callback=elicit) as client:
        try:
            return await client.session.call_tool(
                "fx_ask_name", {}, input_responses=NAME, request_state=state, allow_input_required=True
            )
        except MCPError as refused:
            return refused


async def test_an_upstream_s_round_reaches_the_agent_under_its_own_keys_and_the_retry_finishes_it(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern
    alice = token(gw, sub="alice", roles=("viewer",))
    first = await _first_round(gw, alice)
    assert set(first.input_requests or {}) == {"user_name"}
    assert first.request_state
    assert "fx_ask_name" not in first.request_state  # sealed
    finished = await _retry(gw, alice, first.request_state)
    assert isinstance(finished, types.CallToolResult)
    assert text_of(finished) == "hello Ada"
    assert upstream.state.calls["ask_name"] == 2  # asked once, continued once: never replayed


async def test_the_sdk_s_own_driver_gets_the_upstream_s_answer_through_the_gateway(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, _ = modern
    async with mcp_client(gw.url, token=token(gw), mode=MODERN, elicitation_callback=elicit) as client:
        result = await client.call_tool("fx_ask_name", {})
    assert text_of(result) == "hello Grace"


async def test_another_subject_s_retry_with_a_captured_request_state_is_refused(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern
    alice, mallory = token(gw, sub="alice", roles=("viewer",)), token(gw, sub="mallory", roles=("viewer",))
    first = await _first_round(gw, alice)
    refused = await _retry(gw, mallory, first.request_state)
    assert isinstance(refused, MCPError)
    assert refused.error.code == types.INVALID_PARAMS
    assert upstream.state.calls["ask_name"] == 1  # the waiting call was not continued


async def test_a_tampered_request_state_is_refused(modern: tuple[RunningGateway, RunningUpstream]) -> None:
    gw, upstream = modern
    alice = token(gw, sub="alice", roles=("viewer",))
    first = await _first_round(gw, alice)
    state = first.request_state or ""
    tampered = state[:-2] + ("AA" if state[-2:] != "AA" else "BB")
    refused = await _retry(gw, alice, tampered)
    assert isinstance(refused, MCPError)
    assert refused.error.code == types.INVALID_PARAMS
    assert upstream.state.calls["ask_name"] == 1


async def test_input_responses_sent_with_the_first_request_reach_the_upstream_extra_keys_ignored(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    # SEP-2322: a client may send inputResponses without a round; the upstream ignores keys it
    # did not ask for, and the gateway passes them through rather than starting a round.
    gw, upstream = modern
    extra = {**NAME, "unknown_extra_key": types.ElicitResult(action="accept", content={"foo": "bar"})}
    async with mcp_client(gw.url, token=token(gw), mode=MODERN, elicitation_callback=elicit) as client:
        result = await client.session.call_tool(
            "fx_ask_name", {}, input_responses=extra, allow_input_required=True
        )
    assert isinstance(result, types.CallToolResult), result
    assert text_of(result) == "hello Ada"
    assert upstream.state.calls["ask_name"] == 1  # answered on the first request, no round
