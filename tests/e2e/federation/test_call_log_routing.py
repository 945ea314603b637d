"""Per-call routing of an upstream's log and progress notifications: two stateless calls of one
subject in flight at once share one upstream connection (a 2026-07-28 upstream's stateless
connection, or a 2025-11-25 upstream's session held per subject for calls without a ledger
session) and each hears only its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types as types
import pytest

from tests.e2e.federation.steps import register, token
from tests.support.clients import mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream
from tests.support.upstream_rounds import rounds_upstream

MODERN = "2026-07-28"
LABELS = ("alpha", "beta")


ATTEMPTS = 4
"""Pairs of calls tried: two commands whose keys share a bus partition run in turn (1 in 8 on
the embedded bus), and such a pair proves nothing; at least one pair must overlap."""


@pytest.fixture(params=[False, True], ids=["2026-07-28-upstream", "2025-11-25-upstream"])
async def fronting(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[RunningGateway, RunningUpstream]]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1"}
    )
    async with rounds_upstream(legacy=bool(request.param)) as upstream, gateway(settings) as gw:
        structured(await register(gw, upstream))
        yield gw, upstream


async def _chatty(gw: RunningGateway, label: str) -> list[str]:
    """What this call's agent heard: its log lines and progress messages."""
    heard: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        heard.append(str(params.data))

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append(str(message))

    bearer = token(gw, sub="alice")
    async with mcp_client(
        gw.url, token=bearer, mode=MODERN, logging_callback=on_log, log_level="debug"
    ) as client:
        result = await client.call_tool("fx_chatty", {"label": label}, progress_callback=on_progress)
    assert text_of(result) == label
    return heard


async def test_two_calls_in_flight_on_one_upstream_connection_hear_only_their_own_logs_and_progress(
    fronting: tuple[RunningGateway, RunningUpstream],
) -> None:
    gw, upstream = fronting
    overlapped = 0
    for _ in range(ATTEMPTS):
        alone = upstream.state.calls["chatty_alone"]
        heard = await asyncio.gather(*(_chatty(gw, label) for label in LABELS))
        for label, lines in zip(LABELS, heard, strict=True):
            assert f"{label} after" in lines, (label, lines)
            assert f"{label} halfway" in lines, (label, lines)
            assert all(line.startswith(label) for line in lines), (label, lines)
        overlapped += upstream.state.calls["chatty_alone"] == alone
        if overlapped:
            break
    assert overlapped, "no pair of calls was in flight at once"
