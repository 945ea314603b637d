"""Upstream sessions and resilience on the embedded gateway: one upstream MCP session per
ledger session, re-established after the upstream restarts (its 404), a clear error when it
dies mid-call and recovery once it is back, idle sessions closed, and the circuit breaker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream, upstream_server


async def _open_session(gw: RunningGateway) -> str:
    async with mcp_client(gw.url, token=token(gw)) as client:
        return str(structured(await client.call_tool("session_open", {}))["session_id"])


async def _echo(gw: RunningGateway, text: str, session: str | None = None) -> str:
    async with mcp_client(gw.url, token=token(gw), session=session) as client:
        result = await client.call_tool("fx_echo", {"text": text})
    assert not result.is_error, text_of(result)
    return text_of(result)


async def test_each_ledger_session_gets_its_own_upstream_session_kept_across_calls(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    one, two = await _open_session(secured), await _open_session(secured)
    for text in ("a", "b"):
        assert await _echo(secured, text, one) == text
    assert await _echo(secured, "c", two) == "c"
    assert len(upstream.state.sessions) == 2


async def test_after_the_upstream_restarts_its_404_is_answered_by_a_new_session(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    session = await _open_session(secured)
    assert await _echo(secured, "before", session) == "before"
    await upstream.stop(kill=True)
    await upstream.start()  # same port, every session forgotten
    assert await _echo(secured, "after", session) == "after"
    assert len(upstream.state.sessions) == 2


async def test_an_upstream_dying_mid_call_is_a_clear_error_and_calls_recover_once_it_is_back(
    secured: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(secured, upstream))
    session = await _open_session(secured)

    async def slow() -> str:
        async with mcp_client(secured.url, token=token(secured), session=session) as client:
            result = await client.call_tool("fx_slow", {"steps": 1, "wait_for_release": True})
        assert result.is_error
        return text_of(result)

    call = asyncio.create_task(slow())
    async with asyncio.timeout(10):
        while upstream.state.calls["slow"] == 0:
            await asyncio.sleep(0.01)
    await upstream.stop(kill=True)
    message = await asyncio.wait_for(call, timeout=30)
    assert "upstream_unreachable" in message or "upstream_timeout" in message
    assert "fixture" in message
    await upstream.start()
    assert await _echo(secured, "back", session) == "back"


@pytest.fixture
async def impatient(tmp_path: Path, upstream: RunningUpstream) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={
            "registry_allowed_hosts": "127.0.0.1",
            "upstream_idle_seconds": 0.2,
            "upstream_breaker_failures": 2,
            "upstream_breaker_cooldown": 60.0,
        }
    )
    async with gateway(settings) as running:
        yield running


async def test_idle_upstream_sessions_are_closed(
    impatient: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(impatient, upstream))
    assert await _echo(impatient, "x", await _open_session(impatient)) == "x"
    (call_session,) = upstream.state.sessions
    async with asyncio.timeout(10):  # idle 0.2 s: the sweeper closes it (DELETE) within a second
        while call_session not in upstream.state.deleted:
            await asyncio.sleep(0.05)


async def test_a_failing_upstream_opens_its_circuit_with_a_clear_error(
    impatient: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(impatient, upstream))
    await upstream.stop(kill=True)
    texts = []
    async with mcp_client(impatient.url, token=token(impatient)) as client:
        for _ in range(3):
            texts.append(text_of(await client.call_tool("fx_echo", {"text": "x"})))
    assert "upstream_unreachable" in texts[0]
    assert "circuit is open" in texts[2]
    assert "fixture" in texts[2]


async def test_a_2026_07_28_upstream_is_discovered_and_called_statelessly_by_a_2026_agent(
    tmp_path: Path,
) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1"}
    )
    async with upstream_server(legacy=False) as modern, gateway(settings) as gw:
        structured(await register(gw, modern))
        async with mcp_client(gw.url, token=token(gw), mode="2026-07-28") as agent:
            assert text_of(await agent.call_tool("fx_echo", {"text": "one"})) == "one"
        async with mcp_client(gw.url, token=token(gw)) as admin:
            listed = structured(await admin.call_tool("list_servers", {}))
        assert modern.state.sessions == set()  # no Mcp-Session-Id on any call
        # A 2025-11-25 agent's call meets the upstream in its own era, where the upstream
        # may send it requests during the call (the back channel).
        assert await _echo(gw, "two", await _open_session(gw)) == "two"
        assert len(modern.state.sessions) == 1
    assert listed["servers"][0]["protocol_version"] == "2026-07-28"


async def test_a_long_upstream_call_outlasts_the_gateway_s_call_timeout(
    tmp_path: Path, upstream: RunningUpstream
) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1", "call_timeout": 1.0}
    )
    async with gateway(settings) as gw:
        structured(await register(gw, upstream, timeout_s=30))

        async def release_later() -> None:
            await asyncio.sleep(2.5)  # longer than the gateway's 1 s call timeout
            upstream.state.release.set()

        releasing = asyncio.create_task(release_later())
        async with mcp_client(gw.url, token=token(gw)) as client:
            result = await client.call_tool("fx_slow", {"steps": 1, "wait_for_release": True})
        await releasing
    assert text_of(result) == "done after 1 steps"


async def test_upstream_health_shows_in_readyz_counts_and_metrics_with_bounded_labels(
    impatient: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(impatient, upstream))
    assert await _echo(impatient, "x") == "x"
    await upstream.stop(kill=True)
    async with mcp_client(impatient.url, token=token(impatient)) as client:
        for _ in range(2):
            await client.call_tool("fx_echo", {"text": "x"})
    async with httpx.AsyncClient(timeout=10) as http:
        ready = (await http.get(impatient.url.removesuffix("/mcp") + "/readyz")).json()
    metrics = impatient.runtime.metrics
    name = "ledger_upstream_request_duration_seconds_count"
    assert ready["upstreams"] == {"tracked": 1, "open_circuits": 1, "failing": 1}
    assert "fixture" not in json.dumps(ready)  # no names for unauthenticated callers
    assert metrics.value(name, {"upstream": "tenant", "outcome": "ok"}) == 1
    assert metrics.value(name, {"upstream": "tenant", "outcome": "unreachable"}) == 2
