"""The replay guard contract on the in-process guard, and its bound on memory: making room
drops only nonces whose pointers have expired, never one that could still be replayed."""

from __future__ import annotations

import asyncio

import pytest

from mcp_ledger.blobs.memory import MemoryReplayGuard
from mcp_ledger.blobs.ports import ReplayGuard
from tests.contracts.replay_guard_contract import ReplayGuardContract


class TestMemoryReplayGuard(ReplayGuardContract):
    @pytest.fixture
    def guard(self) -> ReplayGuard:
        return MemoryReplayGuard()


async def test_a_full_guard_makes_room_by_dropping_expired_nonces_only() -> None:
    guard = MemoryReplayGuard(max_entries=2)
    assert await guard.first_use("expires", 0.05)
    assert await guard.first_use("lives", 60)
    await asyncio.sleep(0.1)
    assert await guard.first_use("new", 60)  # full: "expires" makes room
    assert await guard.first_use("newer", 60)  # full of live nonces: it grows rather than forget
    assert [await guard.first_use(n, 60) for n in ("lives", "new", "newer")] == [False, False, False]
