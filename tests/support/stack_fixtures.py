"""The `stack` fixture: every test that takes it runs once per stack, embedded and distributed.

The distributed parameter is marked `integration` (`-m "not integration"` runs the embedded
one only) and its processes are started once per test session, so tests keep apart by
naming their tenants after a fresh fragment (`tenant_names`). The embedded stack is started
for each test, in the test's own event loop and directory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.distributed import DistributedStack, distributed_stack
from tests.support.stacks import EmbeddedStack, Stack, embedded_stack

STACKS = [pytest.param("embedded"), pytest.param("distributed", marks=pytest.mark.integration)]


@pytest.fixture(scope="session")
def shared_distributed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributedStack]:
    """Two API replicas and two workers for the whole session."""
    with distributed_stack(tmp_path_factory.mktemp("distributed")) as running:
        yield running


@pytest.fixture
async def fresh_embedded_stack(tmp_path: Path) -> AsyncIterator[EmbeddedStack]:
    async with embedded_stack(tmp_path) as running:
        yield running


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> Stack:
    """The gateway with auth on, once per stack."""
    name = "shared_distributed_stack" if request.param == "distributed" else "fresh_embedded_stack"
    running: Stack = request.getfixturevalue(name)
    return running


@pytest.fixture
def tenant_names() -> dict[str, str]:
    """acme and globex, made unique for this test: a shared stack's other tests never meet them."""
    fragment = uuid.uuid4().hex[:10]
    return {name: f"{name}-{fragment}" for name in ("acme", "globex")}
