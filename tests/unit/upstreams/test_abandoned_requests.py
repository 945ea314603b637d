"""Word that a command's agent is gone (the API's abandonment notice on the reply topic) ends
that command's open requests at once and refuses its later ones, only for a command running
here and only from its own tenant and subject."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import pytest

from mcp_ledger.consumers.upstreams.relay.backchannel import AgentRefusedError, BusBackChannel
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.upstreams.events import ABANDONED_HEADER

Published = list[tuple[str, str, bytes, Mapping[str, str]]]


def channel() -> tuple[BusBackChannel, Published]:
    published: Published = []

    async def publish(topic: str, key: str, value: bytes, headers: Mapping[str, str]) -> None:
        published.append((topic, key, value, headers))

    return BusBackChannel(publish, "progress", None), published


def gone(command: CallTool, tenant: str = "acme", subject: str = "alice") -> dict[str, str]:
    return {ABANDONED_HEADER: command.command_id, "tenant": tenant, "subject": subject}


async def _asked(published: Published) -> None:
    async with asyncio.timeout(5):
        while not published:
            await asyncio.sleep(0)


async def test_an_open_request_of_an_abandoned_command_ends_at_once_and_later_ones_are_refused() -> None:
    relay, published = channel()
    call = CallTool(tenant="acme", subject="alice", tool_name="fx_ask_user")
    with relay.running(call):
        waiting = asyncio.create_task(relay.ask(call, "elicitation/create", {}, 30))
        await _asked(published)
        await relay.on_reply(gone(call), b"{}")
        with pytest.raises(AgentRefusedError, match="nobody is left"):
            await asyncio.wait_for(waiting, timeout=2)
        with pytest.raises(AgentRefusedError, match="nobody is left"):
            await relay.ask(call, "input_required", {}, 30)
    assert len(published) == 1  # the later request was never put to anyone


async def test_word_from_another_subject_or_tenant_or_for_a_command_not_running_here_is_ignored() -> None:
    relay, published = channel()
    call = CallTool(tenant="acme", subject="alice", tool_name="fx_ask_user")
    elsewhere = CallTool(tenant="acme", subject="alice", tool_name="fx_ask_user")
    with relay.running(call):
        waiting = asyncio.create_task(relay.ask(call, "elicitation/create", {}, 0.5))
        await _asked(published)
        for headers in (gone(call, subject="mallory"), gone(call, tenant="evil"), gone(elsewhere)):
            await relay.on_reply(headers, b"{}")
        with pytest.raises(AgentRefusedError, match="did not answer"):  # waited its full time
            await waiting
    request_id = json.loads(published[0][2])["request_id"]
    assert request_id
