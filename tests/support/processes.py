"""Gateway processes for integration tests: start, wait until ready, kill, always bounded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]

UNAUTHENTICATED_LOOPBACK = {
    # Processes of tests about something other than tokens: loopback without auth, and the
    # secret API replicas and workers must share for pointers and sealed state.
    "LEDGER_NO_AUTH": "true",
    "LEDGER_SECRET_KEY": "bWNwLWxlZGdlci1pbnRlZ3JhdGlvbi10ZXN0cy1zZWNyZXQta2V5",
}


def isolated_env(
    base: Mapping[str, str], unique: str, *, topics: str = "t", keys: str = "ledger"
) -> dict[str, str]:
    """LEDGER_* for processes that share the services with other tests but nothing else: their
    own topics (`{topics}{unique}.`), consumer groups, Redis keys (`{keys}-{unique}:`) and tenant,
    on loopback without auth and with the secret API and workers must share."""
    return {
        **base,
        "LEDGER_TOPIC_PREFIX": f"{topics}{unique}.",
        "LEDGER_WORKER_GROUP": f"workers-{unique}",
        "LEDGER_PROJECTION_GROUP": f"projections-{unique}",
        "LEDGER_STATE_PREFIX": f"{keys}-{unique}:",
        "LEDGER_LOCAL_TENANT": f"tenant-{unique}",
        **UNAUTHENTICATED_LOOPBACK,
    }


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LedgerProcess:
    """One `mcp-ledger` process and where its output goes."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        """Block until `text` appears in the output (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} not seen within {timeout}s:\n{self.output()[-3000:]}")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Block until /healthz answers (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"not healthy within {timeout}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: a crash, nothing drained."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def ledger_processes(env: Mapping[str, str], tmp: Path) -> Iterator[list[LedgerProcess]]:
    """A list to start processes into; all are stopped at exit."""
    started: list[LedgerProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


def start_ledger(
    started: list[LedgerProcess], env: Mapping[str, str], tmp: Path, *args: str
) -> LedgerProcess:
    """Start `mcp-ledger ARGS…` (an API gets a free port) and record it in `started`."""
    port = free_port() if args[0] in {"api", "serve"} else None
    argv = [sys.executable, "-m", "mcp_ledger.cli", *args]
    if port is not None:
        argv += ["--port", str(port)]
    log = tmp / f"{args[0]}-{len(started)}.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    proc = LedgerProcess(process, log, port)
    started.append(proc)
    return proc


def run_ledger(env: Mapping[str, str], *args: str, timeout: float = 120.0) -> str:
    """Run a short `mcp-ledger` command to completion; returns its output.

    Raises:
        subprocess.CalledProcessError: it failed.
    """
    full_env = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_ledger.cli", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout.decode() + done.stderr.decode()
