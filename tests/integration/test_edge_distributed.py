"""The edge where the distributed path differs from the embedded one: rate limits drawn from
Redis by two API replicas and a worker (plan tasks are charged in the worker process), and
the /metrics listener of an API process.

The embedded versions of these attacks are in tests/security/test_edge.py; here the buckets
live in Redis, so an allowance spent through one process is spent for all of them.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import KekRing, parse_keks
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.mcp_api.rate_limits import RATE_LIMITED
from tests.integration.databases import private_database
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, structured
from tests.support.processes import (
    METRICS_LISTENING,
    LedgerProcess,
    isolated_env,
    ledger_processes,
    run_ledger,
    start_ledger,
)

pytestmark = pytest.mark.integration

WAIT = 60.0


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> Iterator[dict[str, str]]:
    with private_database(services_env) as env:
        yield env


@pytest.fixture
def env(migrated: dict[str, str], unique: str) -> dict[str, str]:
    return {**isolated_env(migrated, unique, topics="e"), "LEDGER_KEK": base64.b64encode(new_key()).decode()}


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[list[LedgerProcess]]:
    with ledger_processes(env, tmp_path) as started:
        yield started


def _stack(procs: list[LedgerProcess], env: dict[str, str], tmp: Path) -> tuple[LedgerProcess, LedgerProcess]:
    """A worker and two API replicas; returns the replicas once they answer."""
    start_ledger(procs, env, tmp, "worker")
    replicas = (start_ledger(procs, env, tmp, "api"), start_ledger(procs, env, tmp, "api"))
    for replica in replicas:
        replica.wait_healthy()
    return replicas


async def _events(env: dict[str, str]) -> list[StoredEvent]:
    """The tenant's stored events, opened (plan task ids are sealed)."""
    store = await open_event_store(env["LEDGER_STORE"])
    ring = KekRing(parse_keks(env["LEDGER_KEK"]))
    keys = SqlKeyStore(create_store_engine(env["LEDGER_STORE"]), ring, owns_engine=True)
    mapper = EventMapper(RecordSealer(keys))
    try:
        tenant = env["LEDGER_LOCAL_TENANT"]
        return [await mapper.open(e) for e in await store.read_all() if e.metadata.get("tenant") == tenant]
    finally:
        await keys.close()
        await store.close()


async def _completed(env: dict[str, str]) -> StoredEvent:
    async with asyncio.timeout(WAIT):
        while not (done := [e for e in await _events(env) if e.event_type == "PlanCompleted"]):
            await asyncio.sleep(0.1)
    return done[0]


def _chain(count: int) -> dict[str, Any]:
    tasks = [
        {"id": f"t{n}", "tool_name": "echo", "parameters": {"text": f"task {n}"}}
        | ({"dependencies": [f"t{n - 1}"]} if n else {})
        for n in range(count)
    ]
    return {"tasks": tasks}


async def test_a_forty_task_plan_runs_only_what_the_shared_allowance_covers_then_every_replica_refuses(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    first, second = _stack(procs, {**env, "LEDGER_RATE_SUBJECT": "5/3600"}, tmp_path)
    async with mcp_client(first.url, mode="2026-07-28") as client:
        created = structured(await client.call_tool("create_plan", {"plan": _chain(40), "execute": True}))
    completed = await _completed(env)
    async with mcp_client(second.url, mode="2026-07-28") as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("echo", {"text": "one more"})
    events = await _events(env)
    failed = [(e.data["task_id"], e.data["error_code"]) for e in events if e.event_type == "TaskFailed"]
    assert created["status"] == "running"
    assert completed.data["status"] == "failed"
    assert sum(1 for e in events if e.event_type == "TaskSucceeded") == 4  # create_plan took one
    assert failed == [("t4", "rate_limited")]
    assert refused.value.code == RATE_LIMITED


async def test_two_pipelines_on_two_replicas_run_two_stages_and_initialize_opens_no_session(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    replicas = _stack(procs, {**env, "LEDGER_RATE_SUBJECT": "2/3600"}, tmp_path)
    stages = [{"tool": "echo", "arguments": {"text": "piped"}}]
    stages += [{"tool": "echo", "input": "text", "from": "/text"} for _ in range(19)]
    refused = []
    for replica in replicas:
        async with mcp_client(replica.url, mode="2026-07-28") as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("run_pipeline", {"stages": stages})
            refused.append(caught.value)
    before = await _events(env)
    async with httpx.AsyncClient() as http:
        session = await http.post(replicas[0].url, json=INITIALIZE, headers=JSON_RPC_HEADERS)
    after = await _events(env)
    assert [(e.code, e.data["stage"]) for e in refused] == [(RATE_LIMITED, 3), (RATE_LIMITED, 1)]
    ran = [e for e in after if e.event_type == "ToolSucceeded" and e.data.get("tool_name") == "echo"]
    assert len(ran) == 2
    assert session.status_code == 429
    assert "mcp-session-id" not in session.headers
    assert len(after) == len(before)


async def test_an_api_process_serves_metrics_only_on_its_own_port_to_the_token_holder(
    env: dict[str, str], procs: list[LedgerProcess], tmp_path: Path
) -> None:
    metrics_env = {**env, "LEDGER_METRICS_PORT": "0", "LEDGER_METRICS_TOKEN": "scrape-secret"}
    start_ledger(procs, env, tmp_path, "worker")
    api = start_ledger(procs, metrics_env, tmp_path, "api")
    api.wait_healthy()
    port = int(api.wait_for_match(METRICS_LISTENING, 30).group(1))  # the port the listener bound
    async with mcp_client(api.url, mode="2026-07-28") as client:
        structured(await client.call_tool("echo", {"text": "counted"}))
    async with httpx.AsyncClient() as http:
        public = await http.get(api.url.removesuffix("/mcp") + "/metrics")
        anonymous = await http.get(f"http://127.0.0.1:{port}/metrics")
        scraped = await http.get(
            f"http://127.0.0.1:{port}/metrics", headers={"authorization": "Bearer scrape-secret"}
        )
    exposed_env = {**env, "LEDGER_METRICS_PORT": "0", "LEDGER_METRICS_HOST": "0.0.0.0"}
    with pytest.raises(subprocess.CalledProcessError) as exposed:
        run_ledger(exposed_env, "api", "--port", "0", timeout=60)
    assert public.status_code == 404
    assert anonymous.status_code == 401
    assert "ledger_" not in public.text + anonymous.text
    assert scraped.status_code == 200
    assert 'method="tools/call",tool="echo"' in scraped.text
    assert "LEDGER_METRICS_TOKEN" in exposed.value.stdout.decode() + exposed.value.stderr.decode()
