"""`mcp-ledger bench history`, the tools/list half: what listing 1,000 registered tools costs.

Two clients per target: the official SDK client (`Client.list_tools`, which validates every
tool it receives: with 1,000 tools that is most of its time) and a bare HTTP POST of the
2026-07-28 request, whose figure is the gateway's answer as the wire carries it. The baseline
of the same run is a plain official-SDK server listing the same number of tools.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_ledger.bench.calls.paths import _percentile
from mcp_ledger.bench.calls.processes import free_port, processes, spawn, wait_healthy

# Half the registration policy's bound on one registration (200): 1,000 tools take ten.
PER_REGISTRATION = 100
MODERN = "2026-07-28"
_RAW_LISTING = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/list",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}
_RAW_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/list",
}


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p99_ms": round(_percentile(values, 0.99), 3),
        "mean_ms": round(statistics.mean(values), 3),
    }


async def timed(samples: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def definition(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "benchmark tool",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "binding": {"kind": "http", "method": "GET", "base_url": "http://127.0.0.1:9", "path": "/"},
    }


async def raw_listing(url: str, headers: dict[str, str], samples: int) -> tuple[dict[str, float], int]:
    """p50 of the bare tools/list POST, read whole, and the answer's size in bytes."""
    async with httpx2.AsyncClient(timeout=60.0, headers=headers | _RAW_HEADERS) as http:

        async def post() -> httpx2.Response:
            answer = await http.post(url, json=_RAW_LISTING)
            answer.raise_for_status()
            return answer

        size = len((await post()).content)
        return summary(await timed(samples, post)), size


async def register(client: Client, tools: int) -> tuple[list[float], str | None]:
    """Register `tools` tools tenant-wide in batches; their times, and a refusal if any."""
    tag = uuid.uuid4().hex[:6]
    registering: list[float] = []
    for start in range(0, tools, PER_REGISTRATION):
        batch = [definition(f"bench_{tag}_{i}") for i in range(start, min(tools, start + PER_REGISTRATION))]
        started = time.perf_counter()
        result = await client.call_tool("register_tools", {"tools": batch})
        registering.append(round((time.perf_counter() - started) * 1000, 1))
        if result.is_error:
            # Reported, not raised: how registration slows as the registry grows is a finding.
            return registering, str(result.content)[:300]
    return registering, None


async def settled_count(client: Client, *, quiet_s: float = 5.0, within_s: float = 180.0) -> int:
    """The number of tools listed once the listing stopped changing for `quiet_s` (a batch that
    was accepted but not answered in time is still being projected), or when `within_s` ran out."""
    deadline = time.monotonic() + within_s
    listed, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len((await client.list_tools(cache_mode="bypass")).tools)
        if now != listed:
            listed, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        await asyncio.sleep(0.5)
    return listed


async def plain_listing(tools: int, samples: int, work: Path) -> dict[str, Any]:
    """The baseline: a plain SDK server listing `tools` tools, through both clients."""
    with processes() as procs:
        port = free_port()
        argv = [sys.executable, "-m", "mcp_ledger.bench.plain_server", str(port), "echo", str(tools)]
        procs.append(spawn(argv, {}, work / "plain-listing.log"))
        wait_healthy(port, "/", procs[0])
        url = f"http://127.0.0.1:{port}/mcp"
        async with (
            httpx2.AsyncClient(timeout=60.0) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            listed = len((await client.list_tools(cache_mode="bypass")).tools)
            sdk = summary(await timed(samples, lambda: client.list_tools(cache_mode="bypass")))
        raw, size = await raw_listing(url, {}, samples)
    return {"listed": listed, "sdk_client": sdk, "raw_http": raw, "answer_bytes": size}
