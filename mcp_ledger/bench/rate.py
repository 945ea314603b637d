"""`mcp-ledger bench rate`: what a rate-limit check costs, and whether it holds under load.

Latency: one check at a time (tenant + subject buckets, as the API draws them), p50/p99.
Accuracy: many concurrent checks against one bucket; the admitted count must equal the
burst. Deliberately no gateway around it: `bench calls` measures whole calls.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from mcp_ledger.bench.state import _summary
from mcp_ledger.limits.policy import RatePolicy
from mcp_ledger.limits.ports import RateLimiter


async def run_rate_bench(limiter: RateLimiter, checks: int, concurrent: int) -> dict[str, Any]:
    """Latency of `checks` sequential checks and admitted/refused of `concurrent` checks at once."""
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    # Generous limits: the latency run measures admitted checks, the common case.
    roomy = RatePolicy.parse(f"{checks * 10}/3600", f"{checks * 10}/3600", {})
    latencies: list[float] = []
    for step in range(checks):
        buckets = roomy.buckets(tenant, f"s{step % 50}")
        started = time.perf_counter()
        await limiter.acquire(buckets)
        latencies.append((time.perf_counter() - started) * 1000)
    burst = max(1, concurrent // 4)
    tight = RatePolicy.parse(f"{burst}/3600", "", {}).buckets(f"{tenant}-tight", "anyone")
    started = time.perf_counter()
    verdicts = await asyncio.gather(*(limiter.acquire(tight) for _ in range(concurrent)))
    elapsed = time.perf_counter() - started
    admitted = sum(verdict.allowed for verdict in verdicts)
    return {
        "tenant": tenant,
        "latency": _summary("check (tenant + subject)", latencies),
        "concurrency": {
            "checks": concurrent,
            "limit": burst,
            "admitted": admitted,
            "refused": concurrent - admitted,
            "exact": admitted == burst,
            "checks_per_s": round(concurrent / elapsed, 1),
        },
    }
