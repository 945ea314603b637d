"""Fixtures of the fault suite: the services with Toxiproxy (scripts/services.sh) and a private
database for the session. Every test here is marked `faults`: CI runs them alone, last."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.stack import fault_services
from tests.integration.databases import private_database
from tests.integration.services import SERVICE_KEYS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def exports() -> dict[str, str]:
    """Every export of scripts/services.sh, LEDGER_TOXIPROXY_URL among them."""
    return fault_services()


@pytest.fixture(scope="session")
def migrated(exports: dict[str, str]) -> Iterator[dict[str, str]]:
    """LEDGER_STORE (a fresh, migrated database), LEDGER_STATE and LEDGER_BUS, nothing else."""
    with private_database({key: exports[key] for key in SERVICE_KEYS}) as env:
        yield env
