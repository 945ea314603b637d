"""Prometheus metrics: one registry per process and the instruments the decorators move.

Owns the metric names and their labels; exposing them is metrics_http.py's (a listener of
its own, never the API's public port). Does not sample anything itself: gauges that need a
query (outbox backlog, lags) are set by samplers.py. Labels stay bounded whatever callers
send: a tool label names a tool the gateway provides or is "registered" (registered names
are tenant data, minted by tenants: `tool_label`), JSON-RPC methods are the MCP methods or
"other" (mcp_metrics.py), event types come from the code, topics and groups from
configuration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mcp_ledger.domain.catalog import RESERVED_TOOL_NAMES

REGISTERED_TOOL = "registered"
"""The tool label of every registered tool: one series for all of them, whoever named them."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TERMINAL_OUTCOMES = {"ToolSucceeded": "succeeded", "ToolFailed": "failed", "ToolCallDenied": "denied"}


def tool_label(name: str) -> str:
    """The label value of a tool: its name for the gateway's own tools, else REGISTERED_TOOL."""
    return name if name in RESERVED_TOOL_NAMES else REGISTERED_TOOL


def _instruments(registry: CollectorRegistry) -> dict[str, Any]:
    return {
        "request_seconds": Histogram(
            "ledger_request_duration_seconds",
            "MCP requests handled by the API, by JSON-RPC method and tool",
            ["method", "tool"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "tool_calls": Counter(
            "ledger_tool_calls",
            "Tool calls recorded, by tool and outcome",
            ["tool", "outcome"],
            registry=registry,
        ),
        "denials": Counter(
            "ledger_tool_call_denials", "ToolCallDenied events recorded, by tool", ["tool"], registry=registry
        ),
        "events_appended": Counter(
            "ledger_events_appended",
            "Events appended to the event store, by type",
            ["event_type"],
            registry=registry,
        ),
        "messages_published": Counter(
            "ledger_messages_published",
            "Messages published to the bus, by topic",
            ["topic"],
            registry=registry,
        ),
        "message_seconds": Histogram(
            "ledger_message_handling_duration_seconds",
            "Time a subscription's handler took for one message, by topic and outcome",
            ["topic", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "in_flight": Gauge(
            "ledger_messages_in_flight",
            "Messages being handled right now, by topic",
            ["topic"],
            registry=registry,
        ),
        "upstream_seconds": Histogram(
            "ledger_upstream_request_duration_seconds",
            "Requests to upstream MCP servers, by upstream (the operator's by name, every tenant's "
            "as 'tenant') and outcome (ok, error, timeout, unreachable, unavailable, ...)",
            ["upstream", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "outbox_backlog": Gauge(
            "ledger_outbox_backlog", "Stored events not yet published (sampled)", registry=registry
        ),
        "consumer_lag": Gauge(
            "ledger_consumer_lag_messages",
            "Kafka end offset minus the group's committed offset, summed over partitions (sampled)",
            ["topic", "group"],
            registry=registry,
        ),
        "store_position": Gauge(
            "ledger_store_position", "Last global position in the event store (sampled)", registry=registry
        ),
        "projected_position": Gauge(
            "ledger_projected_position",
            "Highest global position this process's projections have applied",
            registry=registry,
        ),
        "projection_lag": Gauge(
            "ledger_projection_lag_events",
            "Last stored position minus the highest position this process projected (sampled)",
            registry=registry,
        ),
    }


@dataclass
class LedgerMetrics:
    """The instruments of one process, in a registry of their own (tests run several)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    _by_name: dict[str, Any] = field(init=False)
    _projected: int = field(init=False, default=0)
    """The gauge's value, kept here: reading a sample back collects the whole registry."""

    def __post_init__(self) -> None:
        self._by_name = _instruments(self.registry)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_by_name"][name]
        except KeyError:
            raise AttributeError(name) from None

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0.0 when never set): for tests and the bench."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found

    def recorded(self, event_type: str, data: dict[str, Any]) -> None:
        """Count one appended event (and the tool outcome a terminal one carries)."""
        self.events_appended.labels(event_type=event_type).inc()
        outcome = TERMINAL_OUTCOMES.get(event_type)
        if outcome is None:
            return
        tool = tool_label(str(data.get("tool_name", "")))
        self.tool_calls.labels(tool=tool, outcome=outcome).inc()
        if outcome == "denied":
            self.denials.labels(tool=tool).inc()

    def upstream_request(self, upstream: str, outcome: str, seconds: float) -> None:
        """One request to an upstream; `upstream` must already be a bounded label."""
        self.upstream_seconds.labels(upstream=upstream, outcome=outcome[:32]).observe(seconds)

    def note_projected(self, payload: bytes) -> None:
        """Raise the projected position to a handled ledger.events message's position."""
        try:
            position = int(json.loads(payload)["position"])
        except (ValueError, KeyError, TypeError):
            return
        if position > self._projected:
            self._projected = position
            self.projected_position.set(position)

    @contextmanager
    def handling(self, topic: str) -> Iterator[None]:
        """Time one message's handling and count it in flight meanwhile."""
        gauge = self.in_flight.labels(topic=topic)
        gauge.inc()
        started, outcome = time.perf_counter(), "error"
        try:
            yield
            outcome = "ok"
        finally:
            gauge.dec()
            self.message_seconds.labels(topic=topic, outcome=outcome).observe(time.perf_counter() - started)
