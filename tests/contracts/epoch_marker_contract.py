"""The EpochMarker contract (projections/state_loss.py): a value in the state store that lives
exactly as long as the store's data, which every worker reads and the first one writes.

Owns the shared tests. A subclass named Test<Adapter> provides `markers`, a factory of markers
on one and the same state store (as every worker has its own), and `lose_the_data`, which does
to that store what a restart without persistence does; both clean up after the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from mcp_ledger.projections.state_loss import EpochMarker

Markers = Callable[[], EpochMarker]
Loss = Callable[[], Awaitable[None]]


class EpochMarkerContract:
    @pytest.fixture
    def markers(self) -> Markers:
        raise NotImplementedError("an adapter's test class provides the markers")

    @pytest.fixture
    def lose_the_data(self) -> Loss:
        raise NotImplementedError("an adapter's test class says how its store loses its data")

    async def test_there_is_no_epoch_until_one_is_claimed(self, markers: Markers) -> None:
        marker = markers()
        assert await marker.read() is None
        assert await marker.claim("first") == "first"
        assert await marker.read() == "first"

    async def test_a_claim_never_replaces_the_epoch_of_another(self, markers: Markers) -> None:
        worker, other = markers(), markers()
        assert await worker.claim("first") == "first"
        assert await other.claim("second") == "first"
        assert (await worker.read(), await other.read()) == ("first", "first")

    async def test_workers_claiming_at_once_all_adopt_one_of_their_epochs(self, markers: Markers) -> None:
        workers = [markers() for _ in range(8)]
        claimed = await asyncio.gather(*(w.claim(f"epoch-{i}") for i, w in enumerate(workers)))
        assert len(set(claimed)) == 1
        assert claimed[0] in {f"epoch-{i}" for i in range(8)}
        assert await workers[0].read() == claimed[0]

    async def test_the_epoch_is_gone_with_the_data_and_the_next_claim_is_a_new_one(
        self, markers: Markers, lose_the_data: Loss
    ) -> None:
        worker, other = markers(), markers()
        await worker.claim("before")
        await lose_the_data()
        assert await other.read() is None
        assert await other.claim("after") == "after"
        assert await worker.read() == "after"
