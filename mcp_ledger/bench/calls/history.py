"""`mcp-ledger bench history`, the call path half: does a call cost more as history grows?

A call in a ledger session with 1,000 earlier calls against a call in a new session, and
`tools/list` with 1,000 registered tools, on the embedded gateway (and the distributed one when
the services are configured), each in its own process started for the measurement.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_ledger.bench.calls.listing import (
    plain_listing,
    raw_listing,
    register,
    settled_count,
    summary,
    timed,
)
from mcp_ledger.bench.calls.paths import Progress
from mcp_ledger.bench.calls.processes import running_gateway
from mcp_ledger.bench.calls.store_size import bench_store_size


class _Agent:
    """One authenticated MCP client, optionally inside a ledger session."""

    def __init__(self, url: str, token: str, session: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} | ({"Ledger-Session": session} if session else {})
        self._http = httpx2.AsyncClient(timeout=60.0, headers=headers)
        self.client = Client(streamable_http_client(url, http_client=self._http))

    async def __aenter__(self) -> Client:
        await self._http.__aenter__()
        return await self.client.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(None, None, None)
        await self._http.__aexit__(None, None, None)


async def _echo(client: Client, text: str) -> None:
    result = await client.call_tool("echo", {"text": text})
    if result.is_error:
        raise RuntimeError(f"benchmark call failed: {result.content}")


async def _open_session(url: str, token: str) -> str:
    async with _Agent(url, token) as client:
        result = await client.call_tool("session_open", {})
        if result.is_error or not isinstance(result.structured_content, dict):
            raise RuntimeError(f"session_open failed: {result.content}")
        return str(result.structured_content["session_id"])


async def session_history(url: str, token: str, earlier: int, samples: int) -> dict[str, Any]:
    """p50 of a call in a new session (one per sample) and in one with `earlier` calls."""
    fresh: list[float] = []
    for index in range(samples):
        session = await _open_session(url, token)
        async with _Agent(url, token, session) as client:
            await _echo(client, "warm")  # the client's own first-request costs, not the session's
            started = time.perf_counter()
            await _echo(client, f"fresh {index}")
            fresh.append((time.perf_counter() - started) * 1000)
    session = await _open_session(url, token)
    async with _Agent(url, token, session) as client:
        for index in range(earlier):
            await _echo(client, f"earlier {index}")
        long = await timed(samples, lambda: _echo(client, "after history"))
    new, old = summary(fresh), summary(long)
    return {
        "earlier_calls": earlier,
        "new_session": new,
        "long_session": old,
        "p50_ratio": round(old["p50_ms"] / new["p50_ms"], 2),
        "mean_ratio": round(old["mean_ms"] / new["mean_ms"], 2),
    }


async def tool_listing(url: str, token: str, tools: int, samples: int) -> dict[str, Any]:
    """p50 of tools/list before and after registering `tools` tools tenant-wide, through the
    SDK client and as a bare POST (listing.py), once the registry has settled."""
    async with _Agent(url, token) as client:
        before = await timed(samples, lambda: client.list_tools(cache_mode="bypass"))
        registering, refused = await register(client, tools)
        listed = await settled_count(client)
        after = await timed(samples, lambda: client.list_tools(cache_mode="bypass"))
    raw, size = await raw_listing(url, {"Authorization": f"Bearer {token}"}, samples)
    return {
        "registered": tools,
        "listed": listed,
        "registration_ms": registering,
        "registration_refused": refused,
        "without_registered": summary(before),
        "with_registered": summary(after),
        "raw_http": raw,
        "answer_bytes": size,
    }


async def bench_history(
    target: str, work: Path, env: dict[str, str], *, worker: bool, earlier: int, tools: int, samples: int
) -> dict[str, Any]:
    """Both measurements on one gateway (`serve`, or an API and a worker when `worker`);
    the benchmark tools point at loopback."""
    with running_gateway(target, work, env, worker=worker, loopback_tools=True) as gateway:
        history = await session_history(gateway.url, gateway.token, earlier, samples)
        listing = await tool_listing(gateway.url, gateway.token, tools, samples)
    return {"target": target, "session_history": history, "tools_list": listing}


async def run_history_bench(
    earlier: int,
    tools: int,
    events: int,
    samples: int,
    distributed_env: dict[str, str] | None,
    progress: Progress,
) -> dict[str, Any]:
    """Every history measurement available here, in one run; the JSON-ready report."""
    calls, stores = [], []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        work = Path(tmp)
        progress(f"plain SDK server listing {tools} tools (the tools/list baseline)")
        plain = await plain_listing(tools, samples, work)
        progress(f"embedded: {earlier} calls in one session, {tools} tools registered")
        embedded = {"LEDGER_BUS": "memory://", "LEDGER_STORE": "", "LEDGER_STATE": "memory://"}
        calls.append(
            await bench_history(
                "embedded", work, embedded, worker=False, earlier=earlier, tools=tools, samples=samples
            )
        )
        if distributed_env is not None:
            progress(f"distributed: {earlier} calls in one session, {tools} tools registered")
            prefix = f"bench{uuid.uuid4().hex[:8]}."
            env = {
                **distributed_env,
                "LEDGER_TOPIC_PREFIX": prefix,
                "LEDGER_STATE_PREFIX": f"ledger-{prefix}",
            }
            calls.append(
                await bench_history(
                    "distributed", work, env, worker=True, earlier=earlier, tools=tools, samples=samples
                )
            )
    progress(f"SQLite: appends on an empty store and on one with {events:,} events")
    stores.append(await bench_store_size(None, events, samples * 3))
    if distributed_env is not None:
        progress(f"PostgreSQL: appends on an empty store and on one with {events:,} events")
        stores.append(await bench_store_size(distributed_env["LEDGER_STORE"], events, samples * 3))
    return {"benchmark": "history", "plain_listing": plain, "calls": calls, "stores": stores}
