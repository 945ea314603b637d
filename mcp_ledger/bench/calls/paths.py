"""`mcp-ledger bench calls`: tool-call latency and throughput through the gateway's paths
against a plain SDK server, measured in one run with the same client.

Each target runs in its own process(es); the driver is the official MCP client. Latency
comes from sequential calls (p50/p99), throughput from concurrent clients (calls/s). After
each gateway target the event store is checked: every call must be stored with its outcome.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_ledger.bench.calls.cpu import CpuMeter, listening_pids
from mcp_ledger.bench.calls.processes import free_port, ledger_argv, processes, spawn, wait_healthy
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.auth.dev_tokens import mint_token

Progress = Callable[[str], None]
# The gateway's own processes; the rest of a CPU reading is the services (shared with others).
OWN = frozenset({"server", "api", "worker"})


@dataclass(frozen=True)
class PathResult:
    target: str
    calls: int
    p50_ms: float
    p99_ms: float
    calls_per_s: float
    concurrency: int
    stored_outcomes: int | None = None
    # CPU milliseconds per call of each process group (api, worker, postgres, …) over the
    # whole measurement, and of the gateway's own processes together.
    cpu_ms_per_call: dict[str, float] = field(default_factory=dict)
    own_cpu_ms_per_call: float | None = None


def warmups(calls: int) -> int:
    """Calls made before the measured ones: connections, consumer fetch loops, caches."""
    return max(10, calls // 10)


async def _sequential(url: str, calls: int, headers: dict[str, str], tool: str = "echo") -> list[float]:
    latencies = []
    async with (
        httpx2.AsyncClient(timeout=30.0, headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        for _ in range(warmups(calls)):
            await client.call_tool(tool, {"text": "warm"})
        for index in range(calls):
            started = time.perf_counter()
            result = await client.call_tool(tool, {"text": f"call {index}"})
            latencies.append((time.perf_counter() - started) * 1000)
            if result.is_error:
                raise RuntimeError(f"benchmark call failed: {result.content}")
    return latencies


async def _concurrent(
    url: str | list[str], calls: int, concurrency: int, headers: dict[str, str], tool: str = "echo"
) -> float:
    urls = [url] if isinstance(url, str) else url

    async def one_client(count: int, url: str) -> None:
        async with (
            httpx2.AsyncClient(timeout=30.0, headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            for index in range(count):
                await client.call_tool(tool, {"text": f"c{index}"})

    per_client = max(1, calls // concurrency)
    started = time.perf_counter()
    # Client i talks to replica i mod n, as a balancer spreading sessions would.
    await asyncio.gather(*(one_client(per_client, urls[i % len(urls)]) for i in range(concurrency)))
    return per_client * concurrency / (time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    target: str,
    url: str | list[str],
    calls: int,
    concurrency: int,
    headers: dict[str, str] | None = None,
    meter: CpuMeter | None = None,
    *,
    tool: str = "echo",
) -> PathResult:
    """Latency from sequential calls (on the first URL), throughput from concurrent clients
    (spread over every URL), and CPU per call of the metered processes over both."""
    urls = [url] if isinstance(url, str) else url
    if meter is not None:
        meter.start()
    latencies = await _sequential(urls[0], calls, headers or {}, tool)
    rate = await _concurrent(urls, calls, concurrency, headers or {}, tool)
    made = warmups(calls) + calls + max(1, calls // concurrency) * concurrency
    cpu = meter.per_call_ms(made) if meter is not None else {}
    return PathResult(
        target,
        calls,
        round(statistics.median(latencies), 3),
        round(_percentile(latencies, 0.99), 3),
        round(rate, 1),
        concurrency,
        cpu_ms_per_call=cpu,
        own_cpu_ms_per_call=round(sum(v for k, v in cpu.items() if k in OWN), 3) if cpu else None,
    )


async def _count_outcomes(store_url: str, tenant: str) -> int:
    store = await open_event_store(store_url)
    try:
        count, position = 0, 0
        while batch := await store.read_all(after_position=position, limit=5000):
            count += sum(
                1 for e in batch if e.event_type == "ToolSucceeded" and e.metadata.get("tenant") == tenant
            )
            position = batch[-1].position
        return count
    finally:
        await store.close()


async def bench_plain(calls: int, concurrency: int, work: Path) -> PathResult:
    with processes() as procs:
        port = free_port()
        procs.append(
            spawn([sys.executable, "-m", "mcp_ledger.bench.plain_server", str(port)], {}, work / "plain.log")
        )
        wait_healthy(port, "/", procs[0])
        meter = CpuMeter({"server": [procs[0].pid]})
        return await measure("plain-sdk", f"http://127.0.0.1:{port}/mcp", calls, concurrency, meter=meter)


def service_ports(env: dict[str, str]) -> dict[str, int]:
    """The loopback ports of the services the distributed target uses, by service."""
    found: dict[str, int] = {}
    for name, key in (("postgres", "LEDGER_STORE"), ("redis", "LEDGER_STATE"), ("kafka", "LEDGER_BUS")):
        value = env.get(key, "")
        if "://" in value:
            netloc = value.split("://", 1)[1].split("/", 1)[0].split(",")[0].rsplit("@", 1)[-1]
            if ":" in netloc:
                found[name] = int(netloc.rsplit(":", 1)[1])
    return found


async def bench_gateway(
    target: str,
    calls: int,
    concurrency: int,
    work: Path,
    env: dict[str, str],
    *,
    workers: int = 0,
    apis: int = 1,
) -> PathResult:
    """One gateway target: `serve` when `workers` is 0, else `apis` API replicas and `workers`
    worker processes on the services `env` names."""
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**env, "LEDGER_LOCAL_TENANT": tenant, "LEDGER_DATA_DIR": str(work / target)}
    with processes() as procs:
        groups: dict[str, list[int]] = {"worker": [], "api": []}
        for index in range(workers):
            procs.append(spawn(ledger_argv("worker"), env, work / f"{target}-worker{index}.log"))
            groups["worker"].append(procs[-1].pid)
        ports = [free_port() for _ in range(apis)]
        urls = [f"http://127.0.0.1:{port}/mcp" for port in ports]
        # Replicas behind one balancer share one public URL: the tokens' audience.
        env["LEDGER_AUTH_AUDIENCE"] = urls[0]
        for port in ports:
            command = ("api", "--port", str(port)) if workers else ("serve", "--port", str(port))
            procs.append(spawn(ledger_argv(*command), env, work / f"{target}-{port}.log"))
            groups["api"].append(procs[-1].pid)
            wait_healthy(port, "/healthz", procs[-1])
        # Authenticated like a real agent: every request's JWT is verified.
        token = mint_token(
            work / target,
            subject="bench",
            tenant=tenant,
            roles=["admin"],
            issuer="mcp-ledger-dev",
            audience=urls[0],
        )
        for name, port in service_ports(env).items():
            groups[name] = listening_pids(port)
        meter = CpuMeter({name: pids for name, pids in groups.items() if pids})
        headers = {"Authorization": f"Bearer {token}"}
        result = await measure(target, urls, calls, concurrency, headers, meter)
    store_url = env.get("LEDGER_STORE") or f"sqlite+aiosqlite:///{work / target / 'ledger.db'}"
    stored = await _count_outcomes(store_url, tenant)
    return PathResult(**{**asdict(result), "stored_outcomes": stored})


def _ratios(base: PathResult, other: PathResult) -> dict[str, float]:
    return {
        "p50_ratio": round(other.p50_ms / base.p50_ms, 2),
        "p99_ratio": round(other.p99_ms / base.p99_ms, 2),
        "throughput_ratio": round(other.calls_per_s / base.calls_per_s, 2),
        "own_cpu_ratio": round((other.own_cpu_ms_per_call or 0) / (base.own_cpu_ms_per_call or 1), 2),
    }


async def run_calls_bench(
    calls: int, concurrency: int, distributed_env: dict[str, str] | None, progress: Progress
) -> dict[str, Any]:
    """Measure every available path in one run; returns the JSON-ready report."""
    results: list[PathResult] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        work = Path(tmp)
        progress("plain SDK server")
        results.append(await bench_plain(calls, concurrency, work))
        progress("embedded gateway (SQLite, in-process bus, memory state)")
        embedded = {"LEDGER_BUS": "memory://", "LEDGER_STORE": "", "LEDGER_STATE": "memory://"}
        results.append(await bench_gateway("embedded", calls, concurrency, work, embedded))
        if distributed_env is not None:
            progress("distributed gateway (Kafka, PostgreSQL, Redis)")
            prefix = f"bench{uuid.uuid4().hex[:8]}."
            env = {
                **distributed_env,
                "LEDGER_TOPIC_PREFIX": prefix,
                "LEDGER_STATE_PREFIX": f"ledger-{prefix}",
            }
            results.append(await bench_gateway("distributed", calls, concurrency, work, env, workers=1))
    base = results[0]
    return {
        "benchmark": "calls",
        "tool": "echo",
        "cpu_count": os.cpu_count(),
        "results": [asdict(r) for r in results],
        "ratios_vs_plain_sdk": {r.target: _ratios(base, r) for r in results[1:]},
        "service_cpu_note": "services are shared with other load on the machine: their CPU is an upper bound",
    }
