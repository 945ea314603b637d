"""An upstream tools/call finds its tool once: the lookup ahead of dispatch also decides that
the answer is streamed (so the upstream's notifications reach the caller), instead of a
second catalog lookup for that choice. A built-in's call is still plain JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.e2e.federation.steps import register, token
from tests.support.clients import JSON_RPC_HEADERS, structured
from tests.support.embedded import RunningGateway
from tests.support.upstream import RunningUpstream


def _counting(gw: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every registry-view read the API makes from now on (the catalog's lookups)."""
    views = gw.runtime.registry_views
    reads: list[tuple[Any, ...]] = []
    original: Callable[..., Awaitable[Any]] = views.get

    async def get(*args: Any) -> Any:
        reads.append(args)
        return await original(*args)

    monkeypatch.setattr(views, "get", get)
    return reads


async def _call(gw: RunningGateway, name: str, arguments: dict[str, Any]) -> httpx.Response:
    headers = {
        **JSON_RPC_HEADERS,
        "authorization": f"Bearer {token(gw)}",
        "mcp-protocol-version": "2025-11-25",
    }
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await http.post(gw.url, json=body, headers=headers)


async def test_an_upstream_call_is_looked_up_once_and_answered_on_a_stream(
    secured: RunningGateway, upstream: RunningUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    structured(await register(secured, upstream))
    await _call(secured, "fx_echo", {"text": "warm"})
    reads = _counting(secured, monkeypatch)
    streamed = await _call(secured, "fx_echo", {"text": "hi"})
    upstream_reads = len(reads)
    plain = await _call(secured, "echo", {"text": "hi"})
    assert streamed.status_code == 200, streamed.text
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert '"hi"' in streamed.text
    assert plain.headers["content-type"].startswith("application/json")
    # One by the API ahead of dispatch, one by the worker that runs the call (the embedded
    # gateway's worker reads the same views); a second API lookup to choose streaming made it 3.
    assert upstream_reads == 2, reads
