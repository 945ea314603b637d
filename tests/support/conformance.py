"""The official MCP conformance suite as a test harness: install, run, parse.

Owns finding the suite (scripts/services.sh `start-conformance` installs Node 22, the npm
package and the SDK's everything server, and prints where), running `server --url URL
--requirements REVISION` bounded by a timeout, and reading what it wrote: one directory per
scenario (`server-{scenario}-{timestamp}`) holding `checks.json`. Which scenarios a revision
scores comes from the suite itself (`list --requirements REVISION --server`), so a scenario
the suite runs but never scores (extensions, pending, added after the release) is reported
and never counted. A check is scored when it is SUCCESS or FAILURE in a scored scenario, the
way the suite's own "Total: N passed, M failed" counts (WARNING, INFO and SKIPPED are not).
Does not start the servers under test: tests/conformance/conftest.py does.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.integration.services import REPO_ROOT, SERVICES_SCRIPT, parse_exports
from tests.support.environment import services_script_env

REVISIONS = ("2025-11-25", "2026-07-28")
SUITE_SECONDS = 240.0
"""A whole requirement set: about 5 s against a quiet server, each scenario bounded by --timeout."""
SCENARIO_MS = 30_000
INSTALL_SECONDS = 900
_SCENARIO_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$")
_SCORED = ("SUCCESS", "FAILURE")


@dataclass(frozen=True)
class Suite:
    """Where the installed suite and the everything server are."""

    node: Path
    index_js: Path
    everything: Path


@dataclass(frozen=True)
class Check:
    """One check a scenario reported."""

    scenario: str
    id: str
    status: str
    message: str

    @property
    def key(self) -> str:
        """`scenario/check-id`: the name a test asserts on (ids repeat across scenarios)."""
        return f"{self.scenario}/{self.id}"


@dataclass(frozen=True)
class SuiteRun:
    """What one `server --requirements` run reported."""

    revision: str
    url: str
    exit_code: int
    output: str
    checks: tuple[Check, ...]
    scored_scenarios: frozenset[str]

    @property
    def scored(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.scenario in self.scored_scenarios and c.status in _SCORED)

    @property
    def passed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.scored if c.status == "SUCCESS")

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.scored if c.status == "FAILURE")

    def statuses(self, keys: Iterable[str]) -> dict[str, str]:
        """Each key's status; several checks under one key (a repeated id) fold to FAILURE if
        any failed, and a key the run never reported is MISSING."""
        found: dict[str, str] = {}
        for check in self.checks:
            previous = found.get(check.key)
            found[check.key] = "FAILURE" if "FAILURE" in (previous, check.status) else check.status
        return {key: found.get(key, "MISSING") for key in keys}

    def summary(self) -> str:
        """`passed/total` of the scored checks and the failures by name."""
        lines = [
            f"{self.revision} against {self.url}: {len(self.passed)}/{len(self.scored)} scored checks pass"
        ]
        lines += [f"  FAILED {c.key}: {c.message}" for c in self.failed]
        return "\n".join(lines)


@cache
def installed_suite() -> Suite:
    """Install (once per machine, cached by the script) or find the suite.

    Raises:
        RuntimeError: the script failed or could not install it; with its stderr.
    """
    done = subprocess.run(
        ["bash", str(SERVICES_SCRIPT), "start-conformance"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        env=services_script_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    exports = parse_exports(done.stdout)
    keys = ("LEDGER_CONFORMANCE_NODE", "LEDGER_CONFORMANCE_SUITE", "LEDGER_CONFORMANCE_EVERYTHING")
    if done.returncode != 0 or any(key not in exports for key in keys):
        raise RuntimeError(f"{SERVICES_SCRIPT} start-conformance did not install the suite:\n{done.stderr}")
    return Suite(*(Path(exports[key]) for key in keys))


def _suite(suite: Suite, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(suite.node), str(suite.index_js), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@cache
def scored_scenarios(suite: Suite, revision: str) -> frozenset[str]:
    """The server scenarios `revision` requires (and so scores), as the suite lists them."""
    listing = _suite(suite, "list", "--requirements", revision, "--server", timeout=60).stdout
    _, _, section = listing.partition("Server scenarios")
    names: set[str] = set()
    for line in section.splitlines()[1:]:
        if not line.startswith("  - "):
            break
        names.add(line.removeprefix("  - ").strip())
    if not names:
        raise RuntimeError(f"the suite listed no server scenarios for {revision}:\n{listing}")
    return frozenset(names)


def read_checks(output_dir: Path) -> tuple[Check, ...]:
    """Every check in the per-scenario `checks.json` files under `output_dir`."""
    checks: list[Check] = []
    for directory in sorted(output_dir.iterdir()):
        named = _SCENARIO_DIR.match(directory.name)
        if named is None or not (directory / "checks.json").is_file():
            continue
        for raw in json.loads((directory / "checks.json").read_text()):
            message = str(raw.get("errorMessage") or "")
            checks.append(Check(named["scenario"], str(raw["id"]), str(raw["status"]), message))
    return tuple(checks)


def run_requirements(suite: Suite, url: str, revision: str, *, timeout: float = SUITE_SECONDS) -> SuiteRun:
    """Run every scenario `revision` requires (and the ones it runs unscored) against `url`.

    Raises:
        subprocess.TimeoutExpired: the run took longer than `timeout`.
        RuntimeError: the suite wrote no results (it could not start or reach the server).
    """
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        done = _suite(
            suite,
            *("server", "--url", url, "--requirements", revision),
            *("--timeout", str(SCENARIO_MS), "-o", scratch),
            timeout=timeout,
        )
        checks = read_checks(Path(scratch))
    if not checks:
        raise RuntimeError(
            f"the suite reported no checks (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return SuiteRun(revision, url, done.returncode, done.stdout, checks, scored_scenarios(suite, revision))


def run_scenario(
    suite: Suite, url: str, scenario: str, *, spec_version: str = "2026-07-28"
) -> tuple[Check, ...]:
    """One scenario, forced (extension scenarios are off the spec timeline), and its checks."""
    with tempfile.TemporaryDirectory(prefix="conformance-scenario-") as scratch:
        _suite(
            suite,
            *("server", "--url", url, "--scenario", scenario, "--spec-version", spec_version),
            *("--force", "--timeout", str(SCENARIO_MS), "-o", scratch),
            timeout=120,
        )
        return read_checks(Path(scratch))


def main(argv: list[str]) -> int:
    """`python -m tests.support.conformance URL [REVISION…]`: run, print the scored checks
    passed/total and every failure by name; exit 1 if any scored check failed."""
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        print("usage: scripts/conformance.sh URL [2025-11-25] [2026-07-28]")
        return 2
    suite, failed = installed_suite(), False
    for revision in argv[1:] or REVISIONS:
        run = run_requirements(suite, argv[0], revision)
        print(run.summary())
        unscored = sorted({c.scenario for c in run.checks} - run.scored_scenarios)
        print(f"  run, not scored: {', '.join(unscored)}")
        failed = failed or bool(run.failed)
    return int(failed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
