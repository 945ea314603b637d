"""Fixtures of the federation tests: the fixture upstream and an embedded gateway with auth on
that may reach loopback (where the upstream listens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.upstream import RunningUpstream, upstream_server


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with upstream_server() as running:
        yield running


@pytest.fixture
async def secured(tmp_path: Path, upstream: RunningUpstream) -> AsyncIterator[RunningGateway]:
    """The gateway, stopped before the upstream (it holds sessions there)."""
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1"}
    )
    async with gateway(settings) as running:
        yield running
