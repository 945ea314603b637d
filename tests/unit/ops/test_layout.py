"""The tree keeps the shape docs/architecture.md describes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "mcp_ledger"
ROOT_MODULES = {"__init__.py", "__main__.py", "settings.py"}
MAX_MODULES_PER_PACKAGE = 13  # a dozen and the __init__


def test_the_root_package_holds_only_a_handful_of_modules() -> None:
    assert {path.name for path in PACKAGE.glob("*.py")} == ROOT_MODULES


def test_no_package_holds_more_than_a_dozen_modules() -> None:
    packages = [path for path in PACKAGE.rglob("__init__.py") if "generated" not in path.parts]
    crowded = {
        str(init.parent.relative_to(ROOT)): count
        for init in packages
        if (count := len(list(init.parent.glob("*.py")))) > MAX_MODULES_PER_PACKAGE
    }
    assert packages
    assert crowded == {}


def test_the_package_graph_shows_a_domain_that_imports_nothing() -> None:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package_graph.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    edges = {
        package.strip(): imported.split(", ")
        for package, imported in (line.split(" -> ") for line in printed.splitlines())
    }
    assert set(edges) >= {"domain", "consumers", "mcp_api", "wiring", "cli"}
    assert edges["domain"] == ["-"]
    assert "domain" in edges["consumers"]
    assert "wiring" not in edges["consumers"]
