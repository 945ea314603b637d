"""Operations on the distributed stack, in real processes: one trace from the API process through
Kafka into the worker process, JSON logs naming that trace and command, readiness of the API
against Kafka, PostgreSQL and Redis, and the worker's own metrics port."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.databases import private_database
from tests.support.clients import mcp_client, structured
from tests.support.processes import (
    METRICS_LISTENING,
    LedgerProcess,
    isolated_env,
    ledger_processes,
    start_ledger,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with private_database(services_env) as env:
        yield env


@pytest.fixture
def env(migrated: dict[str, str], unique: str) -> dict[str, str]:
    return {
        **isolated_env(migrated, unique, topics="o"),
        "LEDGER_LOG_LEVEL": "DEBUG",
        "LEDGER_LOG_FORMAT": "json",
        "LEDGER_OTEL_EXPORTER": "console",
        # The SDK's batch processor otherwise exports every 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    with ledger_processes(env, tmp_path) as started:
        yield started


def _span_trace(name: str) -> re.Pattern[str]:
    """The console exporter's JSON of a span named `name`, capturing its trace id."""
    return re.compile(rf'"name": "{re.escape(name)}",\s*"context": \{{\s*"trace_id": "0x([0-9a-f]{{32}})"')


async def test_a_call_is_one_trace_across_the_api_and_worker_processes_with_its_logs_and_metrics(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    worker = start_ledger(procs, {**env, "LEDGER_METRICS_PORT": "0"}, tmp_path, "worker")
    api = start_ledger(procs, env, tmp_path, "api")
    api.wait_healthy()
    metrics_port = int(worker.wait_for_match(METRICS_LISTENING, 60).group(1))
    async with mcp_client(api.url, mode="2026-07-28") as client:
        structured(await client.call_tool("echo", {"text": "across processes"}))
    async with httpx.AsyncClient() as http:
        ready = await http.get(api.url.removesuffix("/mcp") + "/readyz")
        worker_metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text

    api.wait_for_output('"name": "tools/call echo"')
    (trace_id,) = set(_span_trace("tools/call echo").findall(api.output()))
    worker.wait_for_output(f'"trace_id": "0x{trace_id}"')
    handled = _span_trace("handle CallTool").findall(worker.output())
    assert trace_id in handled
    assert trace_id in _span_trace("eventstore append").findall(worker.output())
    logged = [
        json.loads(line)
        for line in worker.output().splitlines()
        if line.startswith("{") and '"trace_id"' in line and "started: echo" in line
    ]
    assert [entry["trace_id"] for entry in logged] == [trace_id]
    assert logged[0]["tenant"] == env["LEDGER_LOCAL_TENANT"]
    assert logged[0]["command_id"]

    assert ready.status_code == 200, ready.text
    assert ready.json()["checked"] == ["bus", "event_store", "keys", "state"]
    assert 'ledger_tool_calls_total{outcome="succeeded",tool="echo"} 1.0' in worker_metrics
