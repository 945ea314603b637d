"""`mcp-ledger bench scale`: calls/s of the distributed gateway with 1 and 2 workers and 1 and 2
API replicas, each with its CPU per call, so the cores a target rate needs can be read off.

Every layout runs in the same invocation on fresh topics and a fresh tenant; the plain SDK
server is measured first as the baseline of the ratios.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mcp_ledger.bench.calls.paths import PathResult, Progress, bench_gateway, bench_plain

LAYOUTS = ((1, 1), (2, 1), (1, 2), (2, 2))


def _row(result: PathResult, workers: int, apis: int, base: PathResult) -> dict[str, Any]:
    own = result.own_cpu_ms_per_call or 0.0
    return {
        **asdict(result),
        "workers": workers,
        "api_replicas": apis,
        "throughput_ratio": round(result.calls_per_s / base.calls_per_s, 2),
        # What one core sustains of this layout's own processes: 1000 ms / CPU ms per call.
        "calls_per_core_s": round(1000 / own, 1) if own else None,
    }


async def run_scale_bench(
    calls: int, concurrency: int, distributed_env: dict[str, str], progress: Progress
) -> dict[str, Any]:
    """Each layout of workers and API replicas in turn; returns the JSON-ready report."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        work = Path(tmp)
        progress("plain SDK server")
        base = await bench_plain(calls, concurrency, work)
        for workers, apis in LAYOUTS:
            progress(f"{workers} worker(s), {apis} API replica(s)")
            prefix = f"bench{uuid.uuid4().hex[:8]}."
            env = {
                **distributed_env,
                "LEDGER_TOPIC_PREFIX": prefix,
                "LEDGER_STATE_PREFIX": f"ledger-{prefix}",
            }
            target = f"w{workers}-a{apis}"
            result = await bench_gateway(target, calls, concurrency, work, env, workers=workers, apis=apis)
            rows.append(_row(result, workers, apis, base))
    return {"benchmark": "scale", "tool": "echo", "baseline": asdict(base), "results": rows}
