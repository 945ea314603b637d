"""`mcp-ledger bench grpc`: tool calls streamed over gRPC ExecuteTool on the embedded gateway.

Two measurements on one bidirectional stream: round trips (send a call, wait for its
result, send the next) for p50/p99 latency, and a burst (every call sent at once, the
server running up to its in-flight bound) for calls per second. Every call is a recorded
echo command through the in-process bus and the SQLite store, as in production embedded.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from mcp_ledger.bench.calls.paths import _percentile
from mcp_ledger.grpc_api.generated import mcp_tool_service_pb2 as pb
from mcp_ledger.grpc_api.structs import to_struct
from mcp_ledger.grpc_api.wire import MCPToolServiceClient
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import running
from mcp_ledger.wiring.grpc import serving_grpc


def _echo(index: int) -> pb.ExecuteToolRequest:
    return pb.ExecuteToolRequest(
        call_id=str(index), tool_name="echo", arguments=to_struct({"text": f"b{index}"})
    )


async def _round_trips(client: MCPToolServiceClient, calls: int) -> list[float]:
    outbox: asyncio.Queue[pb.ExecuteToolRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[pb.ExecuteToolRequest]:
        while (request := await outbox.get()) is not None:
            yield request

    latencies: list[float] = []
    started = time.perf_counter()
    await outbox.put(_echo(0))
    async for update in client.execute_tool(requests()):
        if update.WhichOneof("update") != "result":
            continue
        assert not update.result.is_error, update.result.message
        latencies.append((time.perf_counter() - started) * 1000)
        if len(latencies) == calls:
            await outbox.put(None)
            continue
        started = time.perf_counter()
        await outbox.put(_echo(len(latencies)))
    return latencies


async def _burst(client: MCPToolServiceClient, calls: int) -> float:
    async def requests() -> AsyncIterator[pb.ExecuteToolRequest]:
        for index in range(calls):
            yield _echo(index)

    started, results = time.perf_counter(), 0
    async for update in client.execute_tool(requests()):
        if update.WhichOneof("update") == "result":
            assert not update.result.is_error, update.result.message
            results += 1
    assert results == calls
    return calls / (time.perf_counter() - started)


async def run_grpc_bench(calls: int) -> dict[str, Any]:
    """Round-trip latency and burst throughput of echo over ExecuteTool."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            bus="memory://", store="", state="memory://", data_dir=Path(scratch), no_auth=True
        )
        async with (
            running(settings, api=True, worker=True) as runtime,
            serving_grpc(runtime, "127.0.0.1", 0) as port,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            client = MCPToolServiceClient(channel)
            await _round_trips(client, 20)  # warm up: connections, caches, SQLite pages
            latencies = sorted(await _round_trips(client, calls))
            throughput = await _burst(client, calls)
    return {
        "target": "embedded gateway, gRPC ExecuteTool (echo)",
        "calls": calls,
        "p50_ms": _percentile(latencies, 0.5),
        "p99_ms": _percentile(latencies, 0.99),
        "burst_calls_per_s": throughput,
    }
