"""One contract for every SessionViewStore: memory in unit tests, Redis in integration."""

from __future__ import annotations

import pytest

from mcp_ledger.projections.sessions.ports import SessionViewStore
from mcp_ledger.projections.sessions.view import SessionView


def view(
    session_id: str, position: int, subject: str = "alice", tenant: str = "acme", **notes: object
) -> SessionView:
    return SessionView(
        tenant=tenant,
        session_id=session_id,
        subject=subject,
        opened_at=1.0,
        notes=notes,
        last_position=position,
    )


class SessionViewStoreContract:
    """Subclasses provide a fresh, empty `views` fixture."""

    @pytest.fixture
    def views(self) -> SessionViewStore:
        raise NotImplementedError

    async def test_a_stored_view_is_read_back(self, views: SessionViewStore) -> None:
        assert await views.compare_and_set(view("s1", 5, k=1), 0)
        assert await views.get("acme", "s1") == view("s1", 5, k=1)

    async def test_an_unknown_session_has_no_view(self, views: SessionViewStore) -> None:
        assert await views.get("acme", "nope") is None

    async def test_a_stale_checkpoint_loses_the_compare_and_set(self, views: SessionViewStore) -> None:
        assert await views.compare_and_set(view("s1", 5), 0)
        assert not await views.compare_and_set(view("s1", 9, k=2), 0)
        assert await views.compare_and_set(view("s1", 9, k=2), 5)
        assert await views.get("acme", "s1") == view("s1", 9, k=2)

    async def test_views_of_one_tenant_are_not_visible_under_another(self, views: SessionViewStore) -> None:
        assert await views.compare_and_set(view("s1", 1, tenant="acme"), 0)
        assert await views.get("globex", "s1") is None
        assert await views.all_views("globex") == []

    async def test_the_subject_index_lists_only_that_subjects_sessions(self, views: SessionViewStore) -> None:
        await views.compare_and_set(view("s1", 1), 0)
        await views.compare_and_set(view("s2", 2), 0)
        await views.compare_and_set(view("s3", 3, subject="bob"), 0)
        assert await views.sessions_of("acme", "alice") == ["s1", "s2"]
        assert await views.sessions_of("acme", "bob") == ["s3"]

    async def test_clear_removes_every_view(self, views: SessionViewStore) -> None:
        await views.compare_and_set(view("s1", 1), 0)
        await views.clear()
        assert await views.all_views() == []
        assert await views.sessions_of("acme", "alice") == []

    async def test_purging_a_subject_removes_their_views_and_index_and_nothing_else(
        self, views: SessionViewStore
    ) -> None:
        await views.compare_and_set(view("s1", 1, secret="x"), 0)
        await views.compare_and_set(view("s2", 2), 0)
        await views.compare_and_set(view("s3", 3, subject="bob"), 0)

        assert await views.purge_subject("acme", "alice") == 2
        assert await views.get("acme", "s1") is None
        assert await views.get("acme", "s2") is None
        assert await views.sessions_of("acme", "alice") == []
        assert await views.get("acme", "s3") == view("s3", 3, subject="bob")

    async def test_purging_twice_removes_nothing_the_second_time(self, views: SessionViewStore) -> None:
        await views.compare_and_set(view("s1", 1), 0)
        assert await views.purge_subject("acme", "alice") == 1
        assert await views.purge_subject("acme", "alice") == 0
