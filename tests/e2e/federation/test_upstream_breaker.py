"""The upstream circuit breaker against a hanging upstream (the fixture upstream's `slow` tool
held until released): calls that time out are failures and open the circuit, the next call
fails at once with a clear error, and once the upstream answers again the half-open probe
closes the circuit. Before the fix a timeout was counted as an answer and the circuit never
opened (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream

TOOL_TIMEOUT_S = 1.0
COOLDOWN_S = 1.0


@pytest.fixture
async def guarded(tmp_path: Path, upstream: RunningUpstream) -> AsyncIterator[RunningGateway]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={
            "registry_allowed_hosts": "127.0.0.1",
            "upstream_breaker_failures": 2,
            "upstream_breaker_cooldown": COOLDOWN_S,
        }
    )
    async with gateway(settings) as running:
        yield running


async def _timed(gw: RunningGateway, tool: str, arguments: dict[str, Any]) -> tuple[str, bool, float]:
    started = time.monotonic()
    async with mcp_client(gw.url, token=token(gw)) as client:
        result = await client.call_tool(tool, arguments)
    return text_of(result), bool(result.is_error), time.monotonic() - started


async def test_a_hanging_upstream_opens_the_circuit_then_fails_fast_and_a_probe_closes_it(
    guarded: RunningGateway, upstream: RunningUpstream
) -> None:
    structured(await register(guarded, upstream, timeout_s=TOOL_TIMEOUT_S))
    hang: dict[str, Any] = {"steps": 1, "wait_for_release": True}
    waited = []
    for _ in range(2):  # the threshold: two calls that get no answer within the tool's timeout
        text, failed, seconds = await _timed(guarded, "fx_slow", hang)
        waited.append(seconds)
        assert failed
        assert text == f"upstream_timeout: fixture: slow took longer than {TOOL_TIMEOUT_S:g}s"
    text, failed, seconds = await _timed(guarded, "fx_echo", {"text": "x"})
    assert failed
    assert text.startswith("upstream_unavailable: upstream 'fixture' is failing"), text
    assert "the circuit is open" in text
    assert seconds < min(waited), f"the open circuit answered after {seconds:.2f}s, not at once"
    assert upstream.state.calls["echo"] == 0  # refused without reaching the upstream
    upstream.state.release.set()  # the upstream answers again
    await asyncio.sleep(COOLDOWN_S + 0.1)
    for text in ("probe", "after"):  # the half-open probe, answered, closes the circuit
        assert (await _timed(guarded, "fx_echo", {"text": text}))[:2] == (text, False)
