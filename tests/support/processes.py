"""Gateway processes for integration tests: start, wait until ready, kill, always bounded.

A child gets an explicit environment: this process's without any LEDGER_* (tests/support/
environment.py), a data directory of its own unless the test names one, and the test's
LEDGER_*. An API binds port 0 and the test reads the port it got from its first line of
output, so no two processes race for a port picked in advance.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.environment import without_prefix

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/mcp")
"""What `mcp-ledger serve` and `mcp-ledger api` print once their socket is bound."""
METRICS_LISTENING = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")
"""What an API or worker process logs once its LEDGER_METRICS_PORT listener is bound."""
TEST_KEK = "bWNwLWxlZGdlci1pbnRlZ3JhdGlvbi10ZXN0cy1rZWs="
"""The KEK integration processes and the tests reading their store share (32 bytes, base64),
so no process falls back to a KEK file in the user's home directory."""

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
        "LEDGER_KEK": TEST_KEK,
        **UNAUTHENTICATED_LOOPBACK,
    }


def child_env(env: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """The whole environment of a child: no LEDGER_* but the test's, and its own data directory
    unless the test names one."""
    return {**without_prefix(os.environ), "LEDGER_DATA_DIR": str(data_dir), **env, "PYTHONUNBUFFERED": "1"}


@dataclass
class LedgerProcess:
    """One `mcp-ledger` process and where its output goes."""

    process: subprocess.Popen[bytes]
    log: Path
    listens: bool = False
    """Whether it serves HTTP (api, serve): its port is the one it reports."""
    _port: int | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        """The port it bound (waits, bounded, for it to say so).

        Raises:
            TimeoutError: it did not report a port in time.
        """
        if not self.listens:
            raise RuntimeError("a worker serves no HTTP")
        if self._port is None:
            self._port = int(self.wait_for_match(LISTENING, 60.0).group(1))
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        """Block until `text` appears in the output (bounded)."""
        self.wait_for_match(re.compile(re.escape(text)), timeout)

    def wait_for_match(self, pattern: re.Pattern[str], timeout: float = 30.0) -> re.Match[str]:
        """Block until `pattern` matches the output (bounded); the first match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := pattern.search(self.output()):
                return found
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{pattern.pattern!r} not seen within {timeout}s:\n{self.output()[-3000:]}")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Block until /healthz answers (bounded; the wait for its port counts against it, so
        a slow start on a loaded machine gets the whole `timeout`, not the port's own 60 s)."""
        deadline = time.monotonic() + timeout
        if self.listens and self._port is None:
            self._port = int(self.wait_for_match(LISTENING, timeout).group(1))
        port = self.port
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited ({self.process.returncode}):\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
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
    """Start `mcp-ledger ARGS…` (an API on port 0) and record it in `started`."""
    listens = args[0] in {"api", "serve"}
    argv = [sys.executable, "-m", "mcp_ledger.cli", *args]
    if listens:
        argv += ["--port", "0"]
    log = tmp / f"{args[0]}-{len(started)}.log"
    full_env = child_env(env, tmp / "ledger-data")
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    proc = LedgerProcess(process, log, listens)
    started.append(proc)
    return proc


def run_ledger(env: Mapping[str, str], *args: str, timeout: float = 120.0) -> str:
    """Run a short `mcp-ledger` command to completion; returns its output.

    Raises:
        subprocess.CalledProcessError: it failed.
    """
    with tempfile.TemporaryDirectory(prefix="ledger-data-") as data_dir:
        done = subprocess.run(
            [sys.executable, "-m", "mcp_ledger.cli", *args],
            cwd=REPO,
            env=child_env(env, Path(data_dir)),
            capture_output=True,
            timeout=timeout,
            check=True,
        )
    return done.stdout.decode() + done.stderr.decode()
