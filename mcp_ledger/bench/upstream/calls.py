"""The upstream target of `mcp-ledger bench calls --upstream`: the plain SDK server called
directly, then as an upstream behind the gateway (embedded, and distributed when the
services are there), in the same run with the same client; every gateway call must be
stored with its outcome.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_ledger.bench.calls.paths import PathResult, _count_outcomes, _ratios, measure
from mcp_ledger.bench.calls.processes import (
    Processes,
    free_port,
    processes,
    running_gateway,
    spawn,
    wait_healthy,
)

TOOL = "upstream_echo"


def _upstream(work: Path, procs: Processes) -> str:
    port = free_port()
    argv = [sys.executable, "-m", "mcp_ledger.bench.plain_server", str(port), TOOL]
    proc = spawn(argv, {}, work / f"upstream-{port}.log")
    procs.append(proc)
    wait_healthy(port, "/", proc)
    return f"http://127.0.0.1:{port}/mcp"


async def bench_upstream_direct(calls: int, concurrency: int, work: Path) -> PathResult:
    with processes() as procs:
        url = _upstream(work, procs)
        return await measure("upstream-direct", url, calls, concurrency, tool=TOOL)


async def _register(url: str, headers: dict[str, str], upstream: str) -> None:
    async with (
        httpx2.AsyncClient(timeout=60.0, headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("register_server", {"name": "bench", "url": upstream})
    if result.is_error:
        raise RuntimeError(f"registering the upstream failed: {result.content}")


async def bench_upstream_gateway(
    target: str, calls: int, concurrency: int, work: Path, env: dict[str, str], distributed: bool
) -> PathResult:
    with (
        processes() as procs,
        running_gateway(target, work, env, worker=distributed, loopback_tools=True) as gateway,
    ):
        await _register(gateway.url, gateway.headers, _upstream(work, procs))
        result = await measure(target, gateway.url, calls, concurrency, gateway.headers, tool=TOOL)
    stored = await _count_outcomes(gateway.store_url, gateway.tenant)
    return PathResult(**{**asdict(result), "stored_outcomes": stored})


async def run_upstream_bench(
    calls: int, concurrency: int, distributed_env: dict[str, str] | None, progress: Callable[[str], None]
) -> dict[str, Any]:
    """upstream-direct (the baseline), then the same upstream through the gateway; the
    report's `results` and `ratios_vs_upstream_direct`."""
    with tempfile.TemporaryDirectory(prefix="ledger-bench-upstream-") as tmp:
        work = Path(tmp)
        progress("plain SDK server as an upstream, called directly")
        results = [await bench_upstream_direct(calls, concurrency, work)]
        progress("the same upstream through the embedded gateway")
        embedded = {"LEDGER_BUS": "memory://", "LEDGER_STORE": "", "LEDGER_STATE": "memory://"}
        results.append(
            await bench_upstream_gateway("embedded-upstream", calls, concurrency, work, embedded, False)
        )
        if distributed_env is not None:
            progress("the same upstream through the distributed gateway")
            prefix = f"benchup{uuid.uuid4().hex[:8]}."
            env = {
                **distributed_env,
                "LEDGER_TOPIC_PREFIX": prefix,
                "LEDGER_STATE_PREFIX": f"ledger-{prefix}",
            }
            results.append(
                await bench_upstream_gateway("distributed-upstream", calls, concurrency, work, env, True)
            )
    return {
        "results": [asdict(r) for r in results],
        "ratios_vs_upstream_direct": {r.target: _ratios(results[0], r) for r in results[1:]},
    }
