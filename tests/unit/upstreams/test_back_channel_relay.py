"""The worker's side of the back channel on its own: an answer is taken only for an open request
of the same tenant and subject, once; nobody answering ends the wait with an error in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import pytest

from mcp_ledger.consumers.upstreams.relay.backchannel import AgentRefusedError, BusBackChannel
from mcp_ledger.domain.commands import CallTool

Published = list[tuple[str, str, bytes, Mapping[str, str]]]


def channel() -> tuple[BusBackChannel, Published]:
    published: Published = []

    async def publish(topic: str, key: str, value: bytes, headers: Mapping[str, str]) -> None:
        published.append((topic, key, value, headers))

    return BusBackChannel(publish, "progress", None), published


def command() -> CallTool:
    return CallTool(tenant="acme", subject="alice", tool_name="fx_ask_model")


def answer(request_id: str, text: str) -> bytes:
    return json.dumps({"request_id": request_id, "result": {"text": text}}).encode()


async def asked(published: Published) -> str:
    async with asyncio.timeout(5):
        while not published:
            await asyncio.sleep(0)
    return str(json.loads(published[0][2])["request_id"])


async def test_an_answer_from_the_same_tenant_and_subject_ends_the_wait() -> None:
    relay, published = channel()
    waiting = asyncio.create_task(relay.ask(command(), "sampling/createMessage", {"x": 1}, 5))
    request_id = await asked(published)
    assert published[0][3]["kind"] == "request"
    assert len(request_id) >= 32
    await relay.on_reply(
        {"request_id": request_id, "tenant": "acme", "subject": "alice"}, answer(request_id, "ok")
    )
    assert await waiting == {"text": "ok"}
    assert len(relay) == 0


async def test_answers_from_another_subject_or_tenant_or_for_another_id_are_ignored() -> None:
    relay, published = channel()
    waiting = asyncio.create_task(relay.ask(command(), "roots/list", None, 0.3))
    request_id = await asked(published)
    for tenant, subject in (("acme", "mallory"), ("evil", "alice")):
        headers = {"request_id": request_id, "tenant": tenant, "subject": subject}
        await relay.on_reply(headers, answer(request_id, "forged"))
    other = {"request_id": "not-" + request_id, "tenant": "acme", "subject": "alice"}
    await relay.on_reply(other, answer("not-" + request_id, "forged"))
    with pytest.raises(AgentRefusedError) as refused:
        await waiting
    assert "did not answer" in refused.value.message
    assert len(relay) == 0


async def test_an_agent_s_error_reaches_the_upstream_as_an_error() -> None:
    relay, published = channel()
    waiting = asyncio.create_task(relay.ask(command(), "elicitation/create", {}, 5))
    request_id = await asked(published)
    refusal = {"request_id": request_id, "error": {"code": -32601, "message": "no elicitation here"}}
    headers = {"request_id": request_id, "tenant": "acme", "subject": "alice"}
    await relay.on_reply(headers, json.dumps(refusal).encode())
    with pytest.raises(AgentRefusedError) as refused:
        await waiting
    assert (refused.value.code, refused.value.message) == (-32601, "no elicitation here")
