"""Upstream health as a worker sees it: a circuit breaker per upstream, latency, errors.

After `threshold` consecutive failures (unreachable, timed out: the SDK's own read timeout
included, which is no answer of the upstream) the breaker opens: calls fail at once with a
clear, retryable error for `cooldown_s`; then exactly one call is let through (half-open, the
probe) while the others keep failing at once, and the probe's outcome closes or reopens it.
One probe only, so a still-hanging upstream costs one call's timeout per cooldown, not one per
waiting call. Tool errors the upstream answered (isError, JSON-RPC errors) are answers, not
failures. Kept in memory per worker: each worker protects itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mcp_ledger.consumers.tools import ToolExecutionError

HealthKey = tuple[str, str | None, str]
"""(tenant, registry session or None, server name)."""


@dataclass
class UpstreamHealth:
    failures: int = 0
    calls: int = 0
    errors: int = 0
    opened_at: float | None = None
    last_error: str | None = None
    last_ok_at: float | None = None
    latency_ms: list[float] = field(default_factory=list)
    probing: bool = False
    """A half-open probe is in flight: other calls are refused until it ends."""

    def summary(self, now: float, cooldown_s: float) -> dict[str, Any]:
        recent = sorted(self.latency_ms)
        state = "closed"
        if self.opened_at is not None:
            state = "open" if now - self.opened_at < cooldown_s else "half-open"
        return {
            "breaker": state,
            "calls": self.calls,
            "errors": self.errors,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
            "p50_ms": recent[len(recent) // 2] if recent else None,
        }


class Breakers:
    """Circuit breakers and health per upstream."""

    def __init__(self, *, threshold: int = 5, cooldown_s: float = 30.0, clock: Any = time.monotonic) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._health: dict[HealthKey, UpstreamHealth] = {}

    def health(self, key: HealthKey) -> UpstreamHealth:
        return self._health.setdefault(key, UpstreamHealth())

    def admit(self, key: HealthKey) -> bool:
        """Let a call through; True when it is the half-open probe (the caller must end it with
        succeeded, failed or abandoned).

        Raises:
            ToolExecutionError: the breaker is open, or half-open with its probe in flight.
        """
        health = self.health(key)
        if health.opened_at is None:
            return False
        waited = self._clock() - health.opened_at
        if waited >= self._cooldown_s and not health.probing:
            health.probing = True
            return True
        retry_in = max(self._cooldown_s - waited, 1.0)
        raise ToolExecutionError(
            "upstream_unavailable",
            f"upstream {key[2]!r} is failing ({health.failures} failures in a row, last: "
            f"{health.last_error}); the circuit is open, retry in {retry_in:.0f}s",
        )

    def settle(self, key: HealthKey, probe: bool, outcome: str | None, elapsed_s: float) -> None:
        """How an admitted call ended: ok or error (the upstream answered, a tool error too),
        None (cancelled: no outcome), anything else a failure (unreachable, timeout, ...)."""
        if outcome is None:
            self.abandoned(key, probe)
        elif outcome in {"ok", "error"}:
            self.succeeded(key, elapsed_s)
        else:
            self.failed(key, outcome)

    def abandoned(self, key: HealthKey, probe: bool) -> None:
        """A call ended without an outcome (cancelled): nothing is counted, and a probe's
        place is free for the next call."""
        if probe:
            self.health(key).probing = False

    def succeeded(self, key: HealthKey, elapsed_s: float) -> None:
        health = self.health(key)
        health.calls += 1
        health.failures = 0
        health.opened_at = None
        health.probing = False
        health.last_ok_at = self._clock()
        health.latency_ms = [*health.latency_ms[-99:], elapsed_s * 1000]

    def failed(self, key: HealthKey, reason: str) -> None:
        health = self.health(key)
        health.calls += 1
        health.errors += 1
        health.failures += 1
        health.last_error = reason[:200]
        if health.failures >= self._threshold or health.probing:
            health.opened_at = self._clock()  # opened, or reopened by a failed probe
        health.probing = False

    def overview(self) -> dict[str, int]:
        """Counts only (no tenant or server names): what an unauthenticated /readyz may show."""
        now = self._clock()
        states = [h.summary(now, self._cooldown_s)["breaker"] for h in self._health.values()]
        return {
            "tracked": len(states),
            "open_circuits": states.count("open"),
            "failing": sum(1 for h in self._health.values() if h.failures),
        }

    def summary(self, key: HealthKey) -> dict[str, Any]:
        return self.health(key).summary(self._clock(), self._cooldown_s)
