"""Wiring of operations concerns: traces, metrics, readiness and the AsyncAPI route.

Called by wiring/bootstrap.py and wiring/api.py: decorates the bus, the event store
and the tool runners, adds `/readyz` and `/asyncapi.json` to the API, starts a worker's
metric samplers and a process's /metrics listener. Picks nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

from mcp.server import Server
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.consumers.tools import ToolRunner
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.eventstore.sql import create_store_engine
from mcp_ledger.observability.asyncapi import asyncapi_document
from mcp_ledger.observability.kafka_lag import KafkaLag
from mcp_ledger.observability.mcp_metrics import RequestMetricsMiddleware
from mcp_ledger.observability.metrics import LedgerMetrics
from mcp_ledger.observability.metrics_http import serve_metrics
from mcp_ledger.observability.readiness import Probe, Readiness
from mcp_ledger.observability.samplers import Sampler, lag_sample, store_samples
from mcp_ledger.observability.traced_bus import TracedBus
from mcp_ledger.observability.traced_store import InstrumentedEventStore, traced_runners
from mcp_ledger.producers.ports import MessageBus
from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.settings import Settings

log = logging.getLogger(__name__)

READINESS_PROBE_TENANT = "ledger-readiness"


def instrument_bus(bus: MessageBus, settings: Settings, metrics: LedgerMetrics) -> TracedBus:
    return TracedBus(bus, metrics, system="kafka" if settings.bus.startswith("kafka") else "in-process")


def instrument_store(store: EventStore, metrics: LedgerMetrics) -> InstrumentedEventStore:
    return InstrumentedEventStore(store, metrics)


def instrument_runners(runners: Mapping[str, ToolRunner]) -> dict[str, ToolRunner]:
    return traced_runners(runners)


def readiness(
    bus: MessageBus, store: EventStore | None, views: SessionViewStore, keys: Probe | None = None
) -> Readiness:
    """Bus running, event store answering, state store answering, stored keys unwrapping."""
    check = Readiness()
    if keys is not None:
        check.probes["keys"] = keys
    if isinstance(bus, TracedBus):
        check.flags["bus"] = lambda: bus.running
    if store is not None:
        check.probes["event_store"] = store.last_position
    check.probes["state"] = lambda: views.get(READINESS_PROBE_TENANT, "readiness-probe")
    return check


def api_routes(
    settings: Settings,
    server: Server[Any],
    metrics: LedgerMetrics,
    bus: MessageBus,
    store: EventStore | None,
    views: SessionViewStore,
    *,
    keys: Probe | None = None,
    details: dict[str, Callable[[], object]] | None = None,
) -> list[Route]:
    """/readyz and /asyncapi.json; also times every MCP request. /metrics is not among them:
    it has a listener of its own (serve_metrics)."""
    server.middleware.append(RequestMetricsMiddleware(metrics))
    document = asyncapi_document(settings)

    async def asyncapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    check = readiness(bus, store, views, keys)
    check.details.update(details or {})
    return [check.route(), Route("/asyncapi.json", asyncapi, methods=["GET"])]


async def start_worker_ops(
    settings: Settings, metrics: LedgerMetrics, store: EventStore, stack: AsyncExitStack
) -> None:
    """Samplers for the worker's gauges."""
    engine = create_store_engine(settings.store_url)
    stack.push_async_callback(engine.dispose)
    samples = store_samples(store, engine, metrics)
    if settings.bus.startswith("kafka://"):
        lag = KafkaLag(
            settings.bus.removeprefix("kafka://").split(","),
            [
                (settings.commands_topic, settings.worker_group),
                (settings.events_topic, settings.projection_group),
                (settings.compliance_topic, settings.compliance_group),
            ],
        )
        stack.push_async_callback(lag.close)
        samples.append(lag_sample(lag, metrics))
    stop = asyncio.Event()
    task = asyncio.create_task(Sampler(samples).run(stop))

    async def stop_sampling() -> None:
        stop.set()
        await task

    stack.push_async_callback(stop_sampling)


def serve_metrics_port(settings: Settings, metrics: LedgerMetrics, stack: AsyncExitStack) -> int | None:
    """With LEDGER_METRICS_PORT, this process's /metrics listener (one per process, whatever
    its roles); returns the port it listens on.

    Raises:
        MetricsExposureError: off loopback without LEDGER_METRICS_TOKEN.
    """
    if settings.metrics_port is None:
        return None
    port, host, token = settings.metrics_port, settings.metrics_host, settings.metrics_token
    listener = serve_metrics(metrics.registry, port, host, token)
    stack.callback(listener.close)
    # Says the port actually bound, which is how LEDGER_METRICS_PORT=0 is found.
    log.info("metrics on http://%s:%d/metrics", host, listener.port)
    return listener.port
