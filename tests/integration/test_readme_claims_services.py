"""README claims that need real processes and real services, each checked against them:

- one-time pointers are one-time across API replicas and workers sharing Redis;
- "If Redis is unreachable the check lets calls through (and logs it)";
- "/readyz … otherwise 503 naming each failing part", and 200 once the part is back;
- a process pointed at a bus or store where nothing listens stops with one clear line;
- "SIGTERM: the API stops accepting, lets in-flight calls finish …, then the bus drains".

Outages are the test's own: its own redis-server, stopped and started again, and a cuttable
TCP path to the shared PostgreSQL (tests/support/outages.py); the shared services never stop.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy.engine import make_url

from tests.integration.databases import private_database
from tests.integration.services import name_fragment
from tests.support.clients import mcp_client, open_session, structured, text_of
from tests.support.outages import own_redis, stable_port, tcp_cut
from tests.support.pet_service import PetService, count_words_tool, pet_service
from tests.support.processes import (
    UNAUTHENTICATED_LOOPBACK,
    LedgerProcess,
    isolated_env,
    ledger_processes,
    run_ledger,
    start_ledger,
)

pytestmark = pytest.mark.integration

PROTOCOL = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "claims", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture(scope="module")
def migrated(services_env: dict[str, str]) -> dict[str, str]:
    run_ledger(services_env, "migrate")
    return services_env


# --- one-time pointers across replicas ------------------------------------------------------


@pytest.fixture(scope="module")
def replicas(
    migrated: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LedgerProcess]]:
    """One worker and two API replicas on Kafka, PostgreSQL and the shared Redis."""
    env = {**isolated_env(migrated, name_fragment()), "LEDGER_REGISTRY_ALLOWED_HOSTS": "127.0.0.1"}
    tmp = tmp_path_factory.mktemp("pointers")
    with ledger_processes(env, tmp) as started:
        start_ledger(started, env, tmp, "worker")
        apis = [start_ledger(started, env, tmp, "api"), start_ledger(started, env, tmp, "api")]
        for api in apis:
            api.wait_healthy()
        yield apis


@pytest.fixture
async def pets() -> AsyncIterator[PetService]:
    async with pet_service() as service:
        yield service


async def _one_time_pointer(url: str, session: str, text: str) -> str:
    async with mcp_client(url, session=session) as client:
        result = await client.call_tool("blob_put", {"name": "memo.txt", "text": text, "one_time": True})
    [link] = [block for block in result.content if isinstance(block, types.ResourceLink)]
    return str(link.uri)


async def _read(url: str, session: str, uri: str) -> str:
    """The pointer's text, or the refusal's message."""
    async with mcp_client(url, session=session) as client:
        try:
            contents = (await client.read_resource(uri)).contents[0]
        except MCPError as error:
            return f"refused: {error}"
    assert isinstance(contents, types.TextResourceContents)
    return contents.text


async def _words(url: str, session: str, tool: str, uri: str) -> str:
    async with mcp_client(url, session=session) as client:
        result = await client.call_tool(tool, {"document": uri})
    return text_of(result)


async def test_a_one_time_pointer_read_on_one_replica_is_refused_on_the_other_and_as_a_tool_argument(
    replicas: list[LedgerProcess], pets: PetService
) -> None:
    first, second = replicas
    tool = f"count_words_{name_fragment()}"
    session = await open_session(first.url)
    async with mcp_client(first.url, session=session) as client:
        structured(
            await client.call_tool("register_tools", {"tools": [count_words_tool(pets.base_url, tool)]})
        )
    uri = await _one_time_pointer(first.url, session, "read me once")
    first_read = await _read(first.url, session, uri)
    again_elsewhere = await _read(second.url, session, uri)
    as_argument = await _words(second.url, session, tool, uri)
    assert first_read == "read me once"
    assert again_elsewhere == "refused: pointer refused: this one-time pointer was already read"
    assert as_argument == "pointer_refused: document: this one-time pointer was already read (replayed)"
    assert pets.received == []


async def test_a_one_time_pointer_a_worker_resolved_for_a_tool_cannot_be_read_on_any_replica(
    replicas: list[LedgerProcess], pets: PetService
) -> None:
    first, second = replicas
    tool = f"count_words_{name_fragment()}"
    session = await open_session(second.url)
    async with mcp_client(second.url, session=session) as client:
        structured(
            await client.call_tool("register_tools", {"tools": [count_words_tool(pets.base_url, tool)]})
        )
    uri = await _one_time_pointer(second.url, session, "three words here")
    counted = await _words(first.url, session, tool, uri)
    reads = [await _read(api.url, session, uri) for api in (first, second)]
    counted_again = await _words(second.url, session, tool, uri)
    assert counted == '{"words": 3}'
    assert reads == ["refused: pointer refused: this one-time pointer was already read"] * 2
    assert counted_again.endswith("this one-time pointer was already read (replayed)")
    assert pets.received == ["three words here"]


# --- processes of one's own: fail-open, readiness, start failures, SIGTERM ------------------


def _embedded_env(tmp: Path, **settings: str) -> dict[str, str]:
    """`mcp-ledger serve` on SQLite and the in-process bus, with these LEDGER_* on top."""
    base = {"LEDGER_DATA_DIR": str(tmp / "data"), "LEDGER_BUS": "memory://", "LEDGER_STORE": ""}
    return {**base, "LEDGER_STATE": "memory://", **UNAUTHENTICATED_LOOPBACK, **settings}


def _call(api: LedgerProcess, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A raw 2026-07-28 tools/call (no tools/list round trip, unlike the SDK client)."""
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": "tools/call",
        "mcp-name": tool,
    }
    params = {"name": tool, "arguments": arguments, "_meta": META}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    answer: dict[str, Any] = httpx.post(api.url, json=body, headers=headers, timeout=30).json()
    return answer


def _echo(api: LedgerProcess, text: str) -> dict[str, Any]:
    return _call(api, "echo", {"text": text})


def _readyz(api: LedgerProcess) -> httpx.Response:
    return httpx.get(api.url.removesuffix("/mcp") + "/readyz", timeout=10)


def _ready_within(api: LedgerProcess, seconds: float) -> httpx.Response:
    """/readyz once it answers 200, or its last answer after `seconds` (bounded poll)."""
    deadline = time.monotonic() + seconds
    response = _readyz(api)
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        response = _readyz(api)
    return response


@contextmanager
def _serving(tmp: Path, env: dict[str, str]) -> Iterator[LedgerProcess]:
    """A healthy `mcp-ledger serve` with this environment, stopped at the end of the block."""
    with ledger_processes(env, tmp) as started:
        api = start_ledger(started, env, tmp, "serve")
        api.wait_healthy()
        yield api


def test_rate_limits_let_calls_through_and_log_it_once_their_redis_stops(tmp_path: Path) -> None:
    with own_redis(tmp_path) as redis:
        env = _embedded_env(tmp_path, LEDGER_STATE=redis.url, LEDGER_RATE_SUBJECT="2/60")
        with _serving(tmp_path, env) as api:
            limited = [_echo(api, f"before {n}") for n in range(3)]
            redis.stop()
            during = [_echo(api, f"during {n}") for n in range(3)]
            log = api.output()
    # The limit was real while Redis answered: the third call of the minute was refused.
    assert [answer.get("error", {}).get("code") for answer in limited] == [None, None, -32029]
    assert [answer["result"]["structuredContent"] for answer in during] == [
        {"text": f"during {n}"} for n in range(3)
    ]
    assert log.count("rate limiter unavailable, execution admitted") == 3


def test_rate_limits_let_calls_through_and_log_it_when_nothing_ever_listened_on_their_redis(
    tmp_path: Path,
) -> None:
    env = _embedded_env(
        tmp_path, LEDGER_STATE=f"redis://127.0.0.1:{stable_port()}/0", LEDGER_RATE_SUBJECT="2/60"
    )
    with _serving(tmp_path, env) as api:
        during = [_echo(api, f"call {n}") for n in range(3)]
        log = api.output()
    assert [answer["result"]["structuredContent"] for answer in during] == [
        {"text": f"call {n}"} for n in range(3)
    ]
    assert log.count("rate limiter unavailable, execution admitted") == 3


def test_readyz_is_503_naming_the_state_store_while_its_redis_is_down_and_200_once_it_is_back(
    tmp_path: Path,
) -> None:
    with (
        own_redis(tmp_path) as redis,
        _serving(tmp_path, _embedded_env(tmp_path, LEDGER_STATE=redis.url)) as api,
    ):
        before = _readyz(api)
        redis.stop()
        down = _readyz(api)
        alive = httpx.get(api.url.removesuffix("/mcp") + "/healthz", timeout=10).status_code
        redis.start()
        back = _ready_within(api, 10)
    assert before.status_code == 200
    assert down.status_code == 503
    assert list(down.json()["problems"]) == ["state"]
    assert "ConnectionError" in down.json()["problems"]["state"]
    assert alive == 200  # an outage takes a replica out of rotation; it is not restarted
    assert back.status_code == 200
    assert back.json()["checked"] == ["bus", "event_store", "keys", "state"]


def test_readyz_is_503_naming_the_event_store_while_postgresql_is_cut_off_and_200_once_it_is_back(
    tmp_path: Path, services_env: dict[str, str]
) -> None:
    # A database of its own: an embedded worker replays its whole store at start.
    with private_database(services_env) as own:
        store = make_url(own["LEDGER_STORE"])
        assert store.port is not None
        with tcp_cut(store.port) as cut:
            env = _embedded_env(tmp_path, LEDGER_STORE=store.set(port=cut.port).render_as_string(False))
            with _serving(tmp_path, env) as api:
                before = _readyz(api)
                cut.cut()
                down = _readyz(api)
                cut.restore()
                back = _ready_within(api, 10)
    assert before.status_code == 200
    assert down.status_code == 503
    assert list(down.json()["problems"]) == ["event_store"]
    assert back.status_code == 200


@pytest.mark.parametrize("part", ["LEDGER_BUS", "LEDGER_STORE"])
def test_a_process_pointed_at_a_bus_or_store_where_nothing_listens_stops_with_one_clear_line(
    tmp_path: Path, part: str
) -> None:
    dead = stable_port()
    address = {
        "LEDGER_BUS": f"kafka://127.0.0.1:{dead}",
        "LEDGER_STORE": f"postgresql+asyncpg://ledger:ledger@127.0.0.1:{dead}/ledger",
    }[part]
    env = _embedded_env(tmp_path, **{part: address})
    with ledger_processes(env, tmp_path) as started:
        api = start_ledger(started, env, tmp_path, "serve")
        try:
            code = api.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        output = api.output()
    errors = [line for line in output.splitlines() if line.startswith("error: cannot start:")]
    assert code == 2, output[-2000:]
    assert len(errors) == 1, output[-2000:]
    last_words = output.split("error: cannot start:", 1)[1]
    assert str(dead) in last_words
    assert "Traceback" not in last_words


def _refuses_connections(port: int | None, within: float) -> bool:
    """Whether connecting to `port` is refused within `within` seconds (bounded poll)."""
    assert port is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.02)
    return False


def test_sigterm_lets_the_in_flight_call_finish_refuses_new_connections_and_exits_0(tmp_path: Path) -> None:
    # DEBUG logs "command … started: sleep": the barrier that the call is in flight.
    env = _embedded_env(tmp_path, LEDGER_DRAIN_TIMEOUT="10", LEDGER_LOG_LEVEL="DEBUG")
    with _serving(tmp_path, env) as api, ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(_call, api, "sleep", {"ms": 2000})
        api.wait_for_output("started: sleep", timeout=20)
        api.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        refused = _refuses_connections(api.port, within=5)
        answer = in_flight.result(timeout=20)
        code = api.process.wait(timeout=20)
        stopped_after = time.monotonic() - signalled
        log = api.output()
    assert answer["result"]["structuredContent"] == {"slept_ms": 2000}
    assert refused
    assert code == 0, log[-2000:]
    assert stopped_after < 10  # LEDGER_DRAIN_TIMEOUT
    assert "not handled" not in log  # the bus drained before it stopped
