"""One contract for every TransportSessions: memory in unit tests, Redis in integration."""

from __future__ import annotations

import pytest

from mcp_ledger.mcp_api.transport_sessions import TransportSession, TransportSessionPurger, TransportSessions


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
