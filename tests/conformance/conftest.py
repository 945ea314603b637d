"""The servers the conformance suite is run against, one fixture per target, and its runs.

A target fixture yields the MCP URL of a running server for the whole session: `everything`
(the SDK's everything server, directly: proves the harness), `embedded` (`mcp-ledger serve
--no-auth`, a child process on a port it binds), `distributed` (API and worker processes on
Kafka, PostgreSQL and Redis, no auth) and `fronted` (`mcp-ledger serve --no-auth --upstream
everything=URL`: the gateway fronting the everything server, every call through its worker)
and `tasks_fronted` (the gateway fronting tests/support/tasks_upstream.py, a task-unaware
server with the `tasks-*` scenarios' tools, which the gateway runs as tasks).
Adding a target is a fixture named `{name}_target` here and an entry in the parametrize list
of the test that holds it to its checks. Each requirement set runs once per target
(`suite_run`), and the tests read that one run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.services import REPO_ROOT
from tests.support.conformance import Suite, SuiteRun, installed_suite, run_requirements
from tests.support.distributed import distributed_stack
from tests.support.environment import without_prefix
from tests.support.processes import TEST_KEK, ledger_processes, start_ledger
from tests.support.tasks_upstream import TASK_SUPPORT

STARTUP_SECONDS = 120.0
_UVICORN = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
NO_AUTH = {"LEDGER_NO_AUTH": "true", "LEDGER_KEK": TEST_KEK}
FRONTED_ENV = {**NO_AUTH, "LEDGER_UPSTREAM_INPUT_WAIT": "2"}
"""The suite's `*-incomplete` scenarios never retry an input round; each such call holds one
of its worker consumer's places in flight (LEDGER_WORKER_IN_FLIGHT) until the wait ends, and a
short wait keeps them from piling up over the run."""


@pytest.fixture(scope="session")
def suite() -> Suite:
    return installed_suite()


def _wait_for_port(process: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if found := _UVICORN.search(log.read_text(errors="replace")):
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"the fixture server exited:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"the fixture server did not listen within {STARTUP_SECONDS}s")


@contextmanager
def _uvicorn_child(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """A fixture MCP server as a child on the port it binds; its MCP URL until the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{_wait_for_port(process, log)}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def everything_target(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The SDK's everything server on a port it binds, run by this venv (it needs only mcp)."""
    log = tmp_path_factory.mktemp("everything") / "everything.log"
    env = {**without_prefix(os.environ), "PYTHONPATH": str(suite.everything), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "mcp_everything_server", "--port", "0", "--log-level", "WARNING"]
    with _uvicorn_child(argv, suite.everything, env, log) as url:
        yield url


@pytest.fixture(scope="session")
def tasks_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tests/support/tasks_upstream.py on a port it binds (slow_compute capped: its docstring)."""
    log = tmp_path_factory.mktemp("tasks-upstream") / "tasks-upstream.log"
    env = {**without_prefix(os.environ), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "tests.support.tasks_upstream", "--port", "0", "--max-seconds", "3"]
    with _uvicorn_child(argv, REPO_ROOT, env, log) as url:
        yield url


@pytest.fixture(scope="session")
def tasks_fronted_target(tasks_upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`serve --no-auth --upstream fixture=URL --task-support …`: the gateway decides which of
    the fixture's plain tools run as tasks (tasks_upstream.TASK_SUPPORT)."""
    tmp = tmp_path_factory.mktemp("tasks-fronted")
    env = {**NO_AUTH, "LEDGER_WORKER_CONCURRENCY": "8"}
    modes = [f"--task-support=fixture:{tool}={mode}" for tool, mode in TASK_SUPPORT.items()]
    with ledger_processes(env, tmp) as started:
        serve = start_ledger(
            started, env, tmp, "serve", "--no-auth", "--upstream", f"fixture={tasks_upstream}", *modes
        )
        serve.wait_healthy(timeout=STARTUP_SECONDS)
        yield serve.url


@pytest.fixture(scope="session")
def embedded_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mcp-ledger serve --no-auth`: API and worker in one process, SQLite, in-process bus."""
    tmp = tmp_path_factory.mktemp("embedded")
    with ledger_processes(NO_AUTH, tmp) as started:
        serve = start_ledger(started, NO_AUTH, tmp, "serve", "--no-auth")
        serve.wait_healthy(timeout=STARTUP_SECONDS)
        yield serve.url


@pytest.fixture(scope="session")
def fronted_target(everything_target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The README's one command: the embedded gateway fronting the everything server."""
    tmp = tmp_path_factory.mktemp("fronted")
    with ledger_processes(FRONTED_ENV, tmp) as started:
        serve = start_ledger(
            started, FRONTED_ENV, tmp, "serve", "--no-auth", "--upstream", f"everything={everything_target}"
        )
        serve.wait_healthy(timeout=STARTUP_SECONDS)
        yield serve.url


@pytest.fixture(scope="session")
def distributed_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One API replica and one worker on Kafka, PostgreSQL and Redis, loopback without auth."""
    with distributed_stack(tmp_path_factory.mktemp("distributed"), apis=1, workers=1, extra=NO_AUTH) as stack:
        yield stack.urls[0]


@pytest.fixture(scope="session")
def fronted_distributed_target(
    everything_target: str, tasks_upstream: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One API and one worker on Kafka, PostgreSQL and Redis fronting both fixture servers
    (the operator's LEDGER_UPSTREAMS, registered by the API at start): the `fronted` and
    `tasks_fronted` runs against the distributed stack, on one stack to keep CI time small."""
    extra = {
        **FRONTED_ENV,
        "LEDGER_UPSTREAMS": json.dumps([f"everything={everything_target}", f"fixture={tasks_upstream}"]),
        "LEDGER_UPSTREAM_TASK_SUPPORT": json.dumps({"fixture": TASK_SUPPORT}),
        "LEDGER_WORKER_CONCURRENCY": "8",
    }
    tmp = tmp_path_factory.mktemp("fronted-distributed")
    with distributed_stack(tmp, apis=1, workers=1, extra=extra) as stack:
        output = stack.apis[0].output()
        assert "NOT registered" not in output, output
        yield stack.urls[0]


@pytest.fixture(scope="session")
def suite_run(suite: Suite, request: pytest.FixtureRequest) -> Callable[[str, str], SuiteRun]:
    """`suite_run(target, revision)`: the one run of that requirement set against that target."""
    runs: dict[tuple[str, str], SuiteRun] = {}

    def run(target: str, revision: str) -> SuiteRun:
        if (target, revision) not in runs:
            url: str = request.getfixturevalue(f"{target}_target")
            runs[target, revision] = run_requirements(suite, url, revision)
        return runs[target, revision]

    return run
