"""A gateway whose every path to a service goes through Toxiproxy: an API and workers as
processes whose LEDGER_STORE, LEDGER_STATE and LEDGER_BUS name proxies, while the checks read
the services directly (a fault must not blind the oracle).

Owns starting the proxies and the processes, and the services' fault-side exports of
scripts/services.sh (LEDGER_TOXIPROXY_URL, and LEDGER_TOXIPROXY_KAFKA where the broker has its
proxy-only listener). Kafka needs that listener: a client that bootstraps through a proxy is
told, in the metadata answer, the address the broker advertises for the listener it reached;
with one listener that is the broker's own, and every connection after the first bypasses the
proxy. The FAULTS listener advertises the proxy's (fixed) port instead.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.integration.services import SERVICES_SCRIPT, name_fragment, parse_exports
from tests.support.distributed import delete_topics
from tests.support.environment import services_script_env
from tests.support.processes import LedgerProcess, isolated_env, ledger_processes, start_ledger
from tests.support.scans import delete_redis_keys
from tests.support.toxiproxy import Proxy, proxies

STARTUP_SECONDS = 180.0
CALL_TIMEOUT = 5.0
"""The gateway's own bound on a call (LEDGER_CALL_TIMEOUT) in these tests."""


def fault_services() -> dict[str, str]:
    """Every export of `scripts/services.sh start`, Toxiproxy's included.

    Raises:
        RuntimeError: the script failed or Toxiproxy is not among them.
    """
    done = subprocess.run(
        ["bash", str(SERVICES_SCRIPT), "start"],
        stdin=subprocess.DEVNULL,
        env=services_script_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    exports = parse_exports(done.stdout)
    if done.returncode != 0 or "LEDGER_TOXIPROXY_URL" not in exports:
        raise RuntimeError(f"services.sh gave no Toxiproxy: {done.stderr[-2000:]}")
    return exports


def _host_port(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port}"


def _via(url: str, proxy: Proxy) -> str:
    return _at(url, proxy.port)


def _at(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@dataclass
class FaultStack:
    """The processes, their proxies, and the direct environment the checks use."""

    direct: dict[str, str]
    """LEDGER_* naming the services themselves (for the checks)."""
    proxied: dict[str, str]
    """LEDGER_* the processes got."""
    proxy: dict[str, Proxy]
    procs: list[LedgerProcess]
    tmp: Path

    @property
    def api(self) -> LedgerProcess:
        return next(p for p in self.procs if p.listens)

    @property
    def workers(self) -> list[LedgerProcess]:
        return [p for p in self.procs if not p.listens and p.process.poll() is None]

    def start_worker(self) -> LedgerProcess:
        return start_ledger(self.procs, self.proxied, self.tmp, "worker")


@contextmanager
def fault_stack(
    migrated: Mapping[str, str],
    exports: Mapping[str, str],
    tmp: Path,
    *,
    workers: int = 1,
    extra: Mapping[str, str] | None = None,
    store_port: int | None = None,
) -> Iterator[FaultStack]:
    """An API and `workers` workers behind proxies to PostgreSQL, Redis and (where the broker
    allows it) Kafka; every proxy removed at exit. `store_port`: the processes reach PostgreSQL
    through that loopback port instead (a proxy of the test's own) rather than Toxiproxy's."""
    fragment = name_fragment()
    direct = {
        **isolated_env(migrated, fragment, topics="f"),
        "LEDGER_CALL_TIMEOUT": str(CALL_TIMEOUT),
        **(extra or {}),
    }
    upstreams = {
        f"pg-{fragment}": _host_port(direct["LEDGER_STORE"]),
        f"redis-{fragment}": _host_port(direct["LEDGER_STATE"]),
    }
    listen = {}
    if kafka := exports.get("LEDGER_TOXIPROXY_KAFKA"):
        upstreams[f"kafka-{fragment}"] = exports["LEDGER_TOXIPROXY_KAFKA_UPSTREAM"]
        listen[f"kafka-{fragment}"] = kafka
    with proxies(exports["LEDGER_TOXIPROXY_URL"], upstreams, listen=listen) as made:
        by_service = {name.split("-", 1)[0]: proxy for name, proxy in made.items()}
        proxied = {
            **direct,
            "LEDGER_STORE": _via(direct["LEDGER_STORE"], by_service["pg"]),
            "LEDGER_STATE": _via(direct["LEDGER_STATE"], by_service["redis"]),
        }
        if store_port is not None:
            proxied["LEDGER_STORE"] = _at(direct["LEDGER_STORE"], store_port)
        if kafka:
            proxied["LEDGER_BUS"] = f"kafka://{kafka}"
        try:
            with ledger_processes(proxied, tmp) as procs:
                stack = FaultStack(direct, proxied, by_service, procs, tmp)
                for _ in range(workers):
                    stack.start_worker()
                start_ledger(procs, proxied, tmp, "api").wait_healthy(timeout=STARTUP_SECONDS)
                yield stack
        finally:
            asyncio.run(delete_topics(direct["LEDGER_BUS"], direct["LEDGER_TOPIC_PREFIX"]))
            asyncio.run(delete_redis_keys(direct["LEDGER_STATE"], direct["LEDGER_STATE_PREFIX"]))
