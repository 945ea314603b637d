"""One contract for every TransportSessions: memory in unit tests, Redis in integration."""

from __future__ import annotations

import asyncio

import pytest

from mcp_ledger.mcp_api.transport.sessions import (
    MAX_SUBSCRIPTIONS,
    TransportSession,
    TransportSessionPurger,
    TransportSessions,
)

ALICE = TransportSession("sess-alice-0001", "acme", "alice")


class TransportSessionsContract:
    """Subclasses provide a fresh, empty `sessions` fixture."""

    @pytest.fixture
    def sessions(self) -> TransportSessions:
        raise NotImplementedError

    async def test_a_created_session_is_live_until_it_ends(self, sessions: TransportSessions) -> None:
        await sessions.create(TransportSession("s1", "acme", "alice"), 60)
        assert await sessions.touch("s1", 60) == TransportSession("s1", "acme", "alice")
        await sessions.end("s1")
        assert await sessions.touch("s1", 60) is None

    async def test_erasure_ends_every_session_of_the_subject_and_only_theirs(
        self, sessions: TransportSessions
    ) -> None:
        for session in (
            TransportSession("s1", "acme", "alice"),
            TransportSession("s2", "acme", "alice"),
            TransportSession("s3", "acme", "bob"),
            TransportSession("s4", "globex", "alice"),
        ):
            await sessions.create(session, 60)
        await sessions.touch("s2", 60)
        purger = TransportSessionPurger(sessions)
        assert await purger.purge("acme", "alice") == 2
        assert await purger.purge("acme", "alice") == 0
        assert [await sessions.touch(s, 60) is None for s in ("s1", "s2", "s3", "s4")] == [
            True,
            True,
            False,
            False,
        ]

    async def test_a_session_ended_before_the_erasure_is_not_counted(
        self, sessions: TransportSessions
    ) -> None:
        await sessions.create(TransportSession("s1", "acme", "alice"), 60)
        await sessions.end("s1")
        assert await sessions.end_subject("acme", "alice") == 0

    async def test_a_created_session_is_found_with_its_owner(self, sessions: TransportSessions) -> None:
        await sessions.create(ALICE, ttl=60)
        assert await sessions.touch(ALICE.session_id, ttl=60) == ALICE

    async def test_an_unknown_session_is_not_found(self, sessions: TransportSessions) -> None:
        assert await sessions.touch("never-created-0001", ttl=60) is None

    async def test_an_ended_session_is_gone_with_its_log_level(self, sessions: TransportSessions) -> None:
        await sessions.create(ALICE, ttl=60)
        await sessions.set_log_level(ALICE.session_id, "debug")
        await sessions.end(ALICE.session_id)
        assert await sessions.touch(ALICE.session_id, ttl=60) is None
        assert await sessions.log_level(ALICE.session_id) is None

    async def test_a_session_expires_after_its_idle_ttl(self, sessions: TransportSessions) -> None:
        await sessions.create(ALICE, ttl=0.2)
        await asyncio.sleep(0.3)  # time passing is the behaviour under test
        assert await sessions.touch(ALICE.session_id, ttl=0.2) is None

    async def test_the_log_level_is_kept_for_live_sessions_only(self, sessions: TransportSessions) -> None:
        assert await sessions.log_level(ALICE.session_id) is None
        await sessions.set_log_level(ALICE.session_id, "info")
        assert await sessions.log_level(ALICE.session_id) is None  # no session, nothing kept
        await sessions.create(ALICE, ttl=60)
        await sessions.set_log_level(ALICE.session_id, "info")
        assert await sessions.log_level(ALICE.session_id) == "info"

    async def test_subscriptions_are_kept_for_live_sessions_only_and_end_with_them(
        self, sessions: TransportSessions
    ) -> None:
        uri = "ledger://sessions/sess-alice-0001"
        assert await sessions.subscribe(ALICE.session_id, uri) is False  # no session, nothing kept
        await sessions.create(ALICE, ttl=60)
        assert await sessions.subscribe(ALICE.session_id, uri) is True
        assert await sessions.subscribed(ALICE.session_id, uri) is True
        assert await sessions.subscribed(ALICE.session_id, uri + "x") is False
        await sessions.unsubscribe(ALICE.session_id, uri)
        assert await sessions.subscribed(ALICE.session_id, uri) is False
        await sessions.subscribe(ALICE.session_id, uri)
        await sessions.end(ALICE.session_id)
        await sessions.create(ALICE, ttl=60)  # the same id again: a new session, no subscriptions
        assert await sessions.subscribed(ALICE.session_id, uri) is False

    async def test_a_session_holds_at_most_the_bounded_number_of_subscriptions(
        self, sessions: TransportSessions
    ) -> None:
        await sessions.create(ALICE, ttl=60)
        for index in range(MAX_SUBSCRIPTIONS):
            assert await sessions.subscribe(ALICE.session_id, f"test://r/{index}") is True
        assert await sessions.subscribe(ALICE.session_id, "test://r/0") is True  # held already
        assert await sessions.subscribe(ALICE.session_id, "test://r/extra") is False
        await sessions.set_log_level(ALICE.session_id, "info")  # other fields do not count
        await sessions.unsubscribe(ALICE.session_id, "test://r/1")
        assert await sessions.subscribe(ALICE.session_id, "test://r/extra") is True

    async def test_erasure_ends_the_subjects_subscriptions(self, sessions: TransportSessions) -> None:
        await sessions.create(ALICE, ttl=60)
        await sessions.subscribe(ALICE.session_id, "test://r")
        await TransportSessionPurger(sessions).purge("acme", "alice")
        await sessions.create(ALICE, ttl=60)
        assert await sessions.subscribed(ALICE.session_id, "test://r") is False

    async def test_declared_extensions_are_kept_for_live_sessions_only_and_end_with_them(
        self, sessions: TransportSessions
    ) -> None:
        tasks = frozenset({"io.modelcontextprotocol/tasks"})
        await sessions.set_extensions(ALICE.session_id, tasks)  # not created yet: nothing kept
        assert await sessions.extensions(ALICE.session_id) == frozenset()
        await sessions.create(ALICE, ttl=60)
        assert await sessions.extensions(ALICE.session_id) == frozenset()
        await sessions.set_extensions(ALICE.session_id, tasks)
        assert await sessions.extensions(ALICE.session_id) == tasks
        assert await sessions.extensions("sess-bob-0001") == frozenset()
        await sessions.end(ALICE.session_id)
        assert await sessions.extensions(ALICE.session_id) == frozenset()

    async def test_erasure_ends_the_subjects_declared_extensions(self, sessions: TransportSessions) -> None:
        await sessions.create(ALICE, ttl=60)
        await sessions.set_extensions(ALICE.session_id, frozenset({"io.modelcontextprotocol/tasks"}))
        await TransportSessionPurger(sessions).purge("acme", "alice")
        assert await sessions.extensions(ALICE.session_id) == frozenset()
