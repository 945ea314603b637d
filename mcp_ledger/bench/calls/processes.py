"""The benches' processes: ports, spawning, readiness, teardown, and one gateway started for a
measurement (`serve`, or a worker and an API) with its tenant and an admin token.

Owns how a bench starts and stops what it measures; does not measure anything (paths.py,
history.py and the upstream bench do).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from mcp_ledger.mcp_api.auth.dev_tokens import mint_token

Processes = list[subprocess.Popen[bytes]]


@dataclass(frozen=True)
class RunningGateway:
    """A gateway started for one measurement: where to call it, as whom, and its processes."""

    url: str
    tenant: str
    token: str
    env: dict[str, str]
    worker_pid: int | None
    api_pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def store_url(self) -> str:
        """The event store the gateway wrote to (its own SQLite file when none is configured)."""
        return (
            self.env.get("LEDGER_STORE")
            or f"sqlite+aiosqlite:///{Path(self.env['LEDGER_DATA_DIR']) / 'ledger.db'}"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Return once `path` answers on `port`.

    Raises:
        RuntimeError: the process exited first.
        TimeoutError: no answer within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"benchmark target exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"benchmark target on port {port} not ready within {timeout}s")


@contextmanager
def processes() -> Iterator[Processes]:
    """A list to append started processes to; all are stopped (killed after 15 s) on exit."""
    procs: Processes = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def ledger_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "mcp_ledger.cli", *args]


@contextmanager
def running_gateway(
    target: str, work: Path, env: dict[str, str], *, worker: bool, loopback_tools: bool = False
) -> Iterator[RunningGateway]:
    """One gateway in a fresh tenant, data under work/target, ready and with an admin token
    whose audience is its URL; stopped on exit. `worker`: a worker and an API on the services
    `env` names, else `serve`. `loopback_tools`: registered tools and servers may be on 127.0.0.1.

    Raises:
        RuntimeError, TimeoutError: a process exited or did not get ready (see wait_healthy).
    """
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    env = {**env, "LEDGER_LOCAL_TENANT": tenant, "LEDGER_DATA_DIR": str(work / target)}
    if loopback_tools:
        env["LEDGER_REGISTRY_ALLOWED_HOSTS"] = "127.0.0.1"
    with processes() as procs:
        port = free_port()
        worker_pid = None
        if worker:
            procs.append(spawn(ledger_argv("worker"), env, work / f"{target}-worker.log"))
            worker_pid = procs[-1].pid
        command = ("api" if worker else "serve", "--port", str(port))
        procs.append(spawn(ledger_argv(*command), env, work / f"{target}.log"))
        wait_healthy(port, "/healthz", procs[-1])
        url = f"http://127.0.0.1:{port}/mcp"
        token = mint_token(
            work / target,
            subject="bench",
            tenant=tenant,
            roles=["admin"],
            issuer="mcp-ledger-dev",
            audience=url,
        )
        yield RunningGateway(url, tenant, token, env, worker_pid, procs[-1].pid)
