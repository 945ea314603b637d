"""Fixtures of the upstream tests on the real services: the fixture upstream, which runs in
the test's event loop on loopback (the stack's workers may reach it), the shared distributed
stack, and a fresh tenant for each test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.support.distributed import DistributedStack
from tests.support.upstream import RunningUpstream, upstream_server


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with upstream_server() as running:
        yield running


@pytest.fixture
def stack(shared_distributed_stack: DistributedStack) -> DistributedStack:
    return shared_distributed_stack


@pytest.fixture
def tenant() -> str:
    return f"fed-{secrets.token_hex(5)}"
