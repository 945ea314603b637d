"""The test process's environment: which LEDGER_* of the calling shell a test may see (none).

Settings read LEDGER_* from the environment, so a variable left in a developer's shell (a
LEDGER_STORE pointing at a real database, a LEDGER_KEK, LEDGER_NO_AUTH) would silently change
what a test exercises. The root conftest removes them all for the whole session; this module
remembers what it removed, because scripts/services.sh has settings of its own under the same
prefix (its ports and state directory) that the integration fixtures pass on to the script.
Does not decide what child processes get: tests/support/processes.py builds their env.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

PREFIX = "LEDGER_"
SERVICES_SCRIPT_SETTINGS = re.compile(
    r"LEDGER_(SERVICES_DIR|SERVICES_WAIT|PG_PORT|PG_DIR|REDIS_PORT|KAFKA_PORT|KAFKA_CONTROLLER_PORT|KAFKA_HEAP|KAFKA_DIR|KAFKA_FAULTS_PORT|TOXIPROXY_PORT|TOXIPROXY_KAFKA_PORT)"
)
"""What scripts/services.sh reads (its header lists them); none of them is a gateway setting."""

_removed: dict[str, str] = {}


@contextmanager
def without_ledger_variables(environ: MutableMapping[str, str] = os.environ) -> Iterator[dict[str, str]]:
    """Remove every LEDGER_* from `environ` until the block ends; yields what was removed."""
    removed = {name: environ.pop(name) for name in [n for n in environ if n.startswith(PREFIX)]}
    remembered = dict(_removed)
    _removed.update(removed)
    try:
        yield removed
    finally:
        for name in [n for n in environ if n.startswith(PREFIX)]:
            del environ[name]
        environ.update(removed)
        _removed.clear()
        _removed.update(remembered)


def services_script_env() -> dict[str, str]:
    """The environment for scripts/services.sh: this process's (no LEDGER_*), plus the
    script's own settings from the calling shell, so its ports and directory are the ones the
    developer chose."""
    own = {name: value for name, value in _removed.items() if SERVICES_SCRIPT_SETTINGS.fullmatch(name)}
    return {**without_prefix(os.environ), **own}


def without_prefix(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` with no LEDGER_* in it."""
    return {name: value for name, value in environ.items() if not name.startswith(PREFIX)}
