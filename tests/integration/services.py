"""Start the integration-test backing services and return their URLs.

Runs ``scripts/services.sh`` (PostgreSQL, Redis and a single-node Kafka, all
private and bound to 127.0.0.1) and parses the ``export KEY=VALUE`` lines it
prints. The script is idempotent, so calling :func:`ensure_services` when the
services already run costs well under a second. Ports and the state directory
follow the ``LEDGER_*`` variables of the calling environment.
"""

from __future__ import annotations

import shlex
import subprocess
import uuid
from pathlib import Path

from tests.support.environment import services_script_env

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_SCRIPT = REPO_ROOT / "scripts" / "services.sh"
SERVICE_KEYS = ("LEDGER_STORE", "LEDGER_STATE", "LEDGER_BUS")
# A cold run installs packages and downloads the Kafka jars.
TIMEOUT_SECONDS = 900
_STDERR_TAIL_LINES = 40


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-_STDERR_TAIL_LINES:])


def parse_exports(stdout: str) -> dict[str, str]:
    """Return the ``KEY=VALUE`` pairs of the ``export`` lines in *stdout*."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        for word in shlex.split(line[len("export ") :]):
            key, sep, value = word.partition("=")
            if sep:
                found[key] = value
    return found


def ensure_services() -> dict[str, str]:
    """Start (or reuse) the services; return LEDGER_STORE, LEDGER_STATE, LEDGER_BUS.

    Raises:
        RuntimeError: the script failed, timed out or printed no URLs; the
            message carries the tail of its stderr.
    """
    try:
        result = subprocess.run(
            ["bash", str(SERVICES_SCRIPT), "start"],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            env=services_script_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise RuntimeError(f"{SERVICES_SCRIPT} timed out after {TIMEOUT_SECONDS}s:\n{_tail(stderr)}") from exc
    if result.returncode != 0:
        raise RuntimeError(
            f"{SERVICES_SCRIPT} failed with exit code {result.returncode}:\n{_tail(result.stderr)}"
        )
    exports = parse_exports(result.stdout)
    missing = [key for key in SERVICE_KEYS if not exports.get(key)]
    if missing:
        raise RuntimeError(
            f"{SERVICES_SCRIPT} did not print {', '.join(missing)}:\n"
            f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}"
        )
    return {key: exports[key] for key in SERVICE_KEYS}


NAME_FRAGMENTS: set[str] = set()
"""Every fragment handed out in this session: its topics are deleted when the session ends."""


def name_fragment() -> str:
    """A fresh name fragment (topics, groups, tenants, keys), remembered for cleanup."""
    fragment = uuid.uuid4().hex[:12]
    NAME_FRAGMENTS.add(fragment)
    return fragment
