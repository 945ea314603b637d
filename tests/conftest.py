"""Fixtures for every test. Kept small: tests/unit, tests/integration and tests/support hold the rest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.environment import without_ledger_variables

pytest_plugins = ["tests.support.stack_fixtures"]


@pytest.fixture(scope="session", autouse=True)
def hermetic_environment() -> Iterator[None]:
    """No LEDGER_* of the calling shell reaches a test: settings come from the test itself
    (integration fixtures get the services' URLs from scripts/services.sh)."""
    with without_ledger_variables():
        yield
