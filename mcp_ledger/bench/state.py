"""`mcp-ledger bench state`: session state get/put latency through the session view store.

A put is what the projector does for every event: a compare-and-set of the session view
against its checkpoint; a get is what the API does to serve session state. Operations run
one after another (latency, not throughput), over a pool of sessions so keys vary.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.projections.sessions.view import SessionView


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(name: str, latencies: list[float]) -> dict[str, Any]:
    return {
        "operation": name,
        "count": len(latencies),
        "p50_ms": round(statistics.median(latencies), 4),
        "p99_ms": round(_percentile(latencies, 0.99), 4),
        "max_ms": round(max(latencies), 4),
    }


async def run_state_bench(views: SessionViewStore, operations: int, sessions: int = 100) -> dict[str, Any]:
    """Put and get latencies (ms) of `operations` each, on `sessions` distinct sessions."""
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    current = {
        index: SessionView(tenant=tenant, session_id=f"s{index:06d}x", subject="bench", opened_at=time.time())
        for index in range(sessions)
    }
    puts: list[float] = []
    gets: list[float] = []
    for step in range(operations):
        index = step % sessions
        view = current[index]
        notes = {**view.notes, f"k{step % 20}": {"step": step, "text": "x" * 64}}
        changed = view.model_copy(update={"notes": notes, "last_position": view.last_position + 1})
        started = time.perf_counter()
        await views.compare_and_set(changed, view.last_position)
        puts.append((time.perf_counter() - started) * 1000)
        current[index] = changed
        started = time.perf_counter()
        await views.get(tenant, changed.session_id)
        gets.append((time.perf_counter() - started) * 1000)
    return {"tenant": tenant, "sessions": sessions, "results": [_summary("put", puts), _summary("get", gets)]}
