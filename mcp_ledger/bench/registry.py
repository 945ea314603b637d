"""`mcp-ledger bench registry`: how long a registration takes to be visible on another replica.

Distributed (Kafka, PostgreSQL, Redis): one worker and two API processes. For each round a
client of replica A calls register_tools while a client of replica B lists tools in a loop
from the same instant; the round's visibility latency is when B first lists the new tool.
Without distributed services the embedded gateway is measured (one replica: the same
process both registers and lists), and the report says so.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_ledger.bench.calls.paths import Progress, _percentile
from mcp_ledger.bench.calls.processes import free_port, ledger_argv, processes, spawn, wait_healthy


def _definition(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "benchmark tool",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        "binding": {"kind": "http", "method": "GET", "base_url": "http://127.0.0.1:9", "path": "/"},
    }


async def _visible_after(
    lister: Client, name: str, started: float, within: float = 10.0
) -> tuple[float, int]:
    """Milliseconds from `started` until `lister` lists `name`, and how many lists it took."""
    lists = 0
    async with asyncio.timeout(within):
        while True:
            lists += 1
            tools = (await lister.list_tools()).tools
            if any(tool.name == name for tool in tools):
                return (time.perf_counter() - started) * 1000, lists


async def _rounds(register_url: str, list_url: str, rounds: int) -> dict[str, Any]:
    ack, visible, list_ms = [], [], []
    async with (
        httpx2.AsyncClient(timeout=30.0) as http_a,
        httpx2.AsyncClient(timeout=30.0) as http_b,
        Client(streamable_http_client(register_url, http_client=http_a)) as registrar,
        Client(streamable_http_client(list_url, http_client=http_b)) as lister,
    ):
        await registrar.call_tool("echo", {"text": "warm"})
        await lister.list_tools()
        tag = uuid.uuid4().hex[:6]
        for index in range(rounds):
            name = f"bench_{tag}_{index}"
            started = time.perf_counter()
            watching = asyncio.create_task(_visible_after(lister, name, started))
            result = await registrar.call_tool("register_tools", {"tools": [_definition(name)]})
            ack.append((time.perf_counter() - started) * 1000)
            if result.is_error:
                watching.cancel()
                raise RuntimeError(f"registration failed: {result.content}")
            seen_ms, lists = await watching
            visible.append(seen_ms)
            list_ms.append(seen_ms / lists)
    return {
        "rounds": rounds,
        "register_ack_ms": _summary(ack),
        "visible_on_other_replica_ms": _summary(visible),
        "mean_tools_list_ms": round(statistics.mean(list_ms), 3),
        "under_100ms_share": round(sum(v < 100 for v in visible) / len(visible), 3),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "p90": round(_percentile(values, 0.9), 3),
        "max": round(max(values), 3),
    }


async def run_registry_bench(
    rounds: int, distributed_env: dict[str, str] | None, progress: Progress
) -> dict[str, Any]:
    """Measure register -> visible; returns the JSON-ready report."""
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        work = Path(tmp)
        env = {
            "LEDGER_LOCAL_TENANT": f"bench-{uuid.uuid4().hex[:8]}",
            "LEDGER_DATA_DIR": str(work),
            "LEDGER_REGISTRY_ALLOWED_HOSTS": "127.0.0.1",  # the benchmark tools point at loopback
        }
        with processes() as procs:
            ports = [free_port(), free_port()]
            if distributed_env is not None:
                progress("distributed: 1 worker, 2 API replicas (Kafka, PostgreSQL, Redis)")
                prefix = f"bench{uuid.uuid4().hex[:8]}."
                env |= {
                    **distributed_env,
                    "LEDGER_TOPIC_PREFIX": prefix,
                    "LEDGER_STATE_PREFIX": f"ledger-{prefix}",
                }
                procs.append(spawn(ledger_argv("worker"), env, work / "worker.log"))
                for index, port in enumerate(ports):
                    procs.append(
                        spawn(ledger_argv("api", "--port", str(port)), env, work / f"api-{index}.log")
                    )
                target = "distributed, other replica"
            else:
                progress("embedded: one process registers and lists")
                env |= {"LEDGER_BUS": "memory://", "LEDGER_STORE": "", "LEDGER_STATE": "memory://"}
                procs.append(spawn(ledger_argv("serve", "--port", str(ports[0])), env, work / "serve.log"))
                ports[1] = ports[0]
                target = "embedded, same process"
            for proc, port in zip(procs[-2:], ports, strict=False):
                wait_healthy(port, "/healthz", proc)
            urls = [f"http://127.0.0.1:{port}/mcp" for port in ports]
            progress(f"{rounds} registrations")
            result = await _rounds(urls[0], urls[1], rounds)
    return {"benchmark": "registry", "target": target, **result}
