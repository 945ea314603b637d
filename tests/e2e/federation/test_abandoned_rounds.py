"""An agent that disconnects before its upstream's round reaches it can never answer it: the
API says so and the worker ends the call at once, not at LEDGER_UPSTREAM_INPUT_WAIT."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.federation.steps import opened_events, register, token
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream
from tests.support.upstream_rounds import rounds_upstream

MODERN = "2026-07-28"
INPUT_WAIT_S = 30.0
ENDED_WITHIN_S = 8.0


@pytest.fixture
async def modern(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, RunningUpstream]]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1", "upstream_input_wait": INPUT_WAIT_S}
    )
    async with rounds_upstream(legacy=False) as upstream, gateway(settings) as gw:
        structured(await register(gw, upstream))
        yield gw, upstream


async def _failures(gw: RunningGateway) -> list[str]:
    events = await opened_events(gw)
    return [str(e.data.get("message")) for e in events if e.event_type == "ToolFailed"]


async def test_a_round_whose_agent_disconnected_before_it_arrived_ends_the_call_at_once(
    modern: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = modern

    async def call() -> None:
        async with mcp_client(gw.url, token=token(gw), mode=MODERN) as client:
            await client.session.call_tool("fx_late_ask", {"delay": 1.0}, allow_input_required=True)

    agent = asyncio.create_task(call())
    await asyncio.sleep(0.5)  # the upstream is still working
    agent.cancel()  # the agent goes away before its round exists
    with contextlib.suppress(asyncio.CancelledError):
        await agent
    started = asyncio.get_running_loop().time()
    failures: list[str] = []
    while not failures and asyncio.get_running_loop().time() - started < ENDED_WITHIN_S:
        await asyncio.sleep(0.25)
        failures = await _failures(gw)
    assert failures, f"the call still waits {ENDED_WITHIN_S:g}s after its agent left"
    assert "nobody is left to answer" in failures[0]
    assert upstream.state.calls["late_ask"] == 1  # asked once, never continued
