"""The ReplayGuard contract (blobs/ports.py): the first use of a one-time pointer's nonce is
the only one, for as long as the pointer lives.

Owns the shared tests. A subclass named Test<Adapter> provides `guard`, fresh for the test and
closed after it. Every test uses fresh nonces, so a Redis may be shared between tests and runs.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mcp_ledger.blobs.ports import ReplayGuard

# The Redis guard keeps a nonce for whole seconds (EX), at least one.
SHORT_TTL = 1.0
FORGET_SECONDS = 5.0


def nonce() -> str:
    return uuid.uuid4().hex


class ReplayGuardContract:
    @pytest.fixture
    def guard(self) -> ReplayGuard:
        raise NotImplementedError("an adapter's test class provides the guard")

    async def test_a_nonce_is_used_once_and_refused_after(self, guard: ReplayGuard) -> None:
        first, second = nonce(), nonce()
        assert await guard.first_use(first, 60)
        assert not await guard.first_use(first, 60)
        assert not await guard.first_use(first, 60)
        assert await guard.first_use(second, 60)

    async def test_of_many_reads_at_once_exactly_one_is_the_first(self, guard: ReplayGuard) -> None:
        shared = nonce()
        firsts = await asyncio.gather(*(guard.first_use(shared, 60) for _ in range(20)))
        assert firsts.count(True) == 1

    async def test_a_nonce_is_forgotten_once_its_pointer_expired_and_not_before(
        self, guard: ReplayGuard
    ) -> None:
        used = nonce()
        assert await guard.first_use(used, SHORT_TTL)
        assert not await guard.first_use(used, SHORT_TTL)  # still within its lifetime
        async with asyncio.timeout(FORGET_SECONDS):
            while not await guard.first_use(used, SHORT_TTL):
                await asyncio.sleep(0.1)
