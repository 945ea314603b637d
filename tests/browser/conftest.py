"""Every test here drives a real Chromium against a running gateway (marker `browser`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext

from tests.support.console import chromium
from tests.support.embedded import RunningGateway, embedded_settings, gateway


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with chromium(tmp_path / "profile") as context:
        yield context


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """The embedded gateway with authentication on (tokens from the development key)."""
    async with gateway(embedded_settings(tmp_path / "gateway", no_auth=False)) as running:
        yield running
