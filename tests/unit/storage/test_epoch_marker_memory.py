"""The epoch marker contract on the in-process marker."""

from __future__ import annotations

import pytest

from mcp_ledger.projections.state_loss_memory import MemoryEpochMarker
from tests.contracts.epoch_marker_contract import EpochMarkerContract, Loss, Markers


class TestMemoryEpochMarker(EpochMarkerContract):
    @pytest.fixture
    def state(self) -> MemoryEpochMarker:
        """One process's state: every worker in it shares the one marker."""
        return MemoryEpochMarker()

    @pytest.fixture
    def markers(self, state: MemoryEpochMarker) -> Markers:
        return lambda: state

    @pytest.fixture
    def lose_the_data(self, state: MemoryEpochMarker) -> Loss:
        async def lose() -> None:
            state.forget()

        return lose
