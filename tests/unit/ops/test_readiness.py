"""Readiness: 200 when every part answers, 503 naming each part that does not."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette

from mcp_ledger.observability.readiness import Readiness


async def _get(readiness: Readiness) -> httpx.Response:
    app = Starlette(routes=[readiness.route()])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        return await client.get("/readyz")


async def _answers() -> int:
    return 7


async def _refuses() -> int:
    raise ConnectionRefusedError("connection refused")


async def _hangs() -> int:
    await asyncio.Event().wait()
    return 0


async def test_every_part_answering_is_ready() -> None:
    response = await _get(Readiness(probes={"event_store": _answers}, flags={"bus": lambda: True}))
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checked": ["bus", "event_store"]}


async def test_each_failing_part_is_named_with_its_reason() -> None:
    readiness = Readiness(
        probes={"event_store": _refuses, "state": _hangs, "fine": _answers},
        flags={"bus": lambda: False},
        timeout=0.05,
    )
    response = await _get(readiness)
    assert response.status_code == 503
    assert response.json()["problems"] == {
        "bus": "not running",
        "event_store": "ConnectionRefusedError: connection refused",
        "state": "no answer within 0s",
    }
