"""One contract for every TransportSessions store: memory in unit tests, Redis in integration."""

from __future__ import annotations

import asyncio

import pytest

from mcp_ledger.mcp_api.transport_sessions import TransportSession, TransportSessions

ALICE = TransportSession("sess-alice-0001", "acme", "alice")


class TransportSessionsContract:
    """Subclasses provide a fresh `sessions` fixture."""

    @pytest.fixture
    def sessions(self) -> TransportSessions:
        raise NotImplementedError

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
