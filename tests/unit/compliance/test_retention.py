"""Who retention erases: subjects inactive for longer than their tenant's retention, each as
one erasure whose id is stable until they are active again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mcp_ledger.consumers.compliance.retention import RetentionPolicy, due_subjects
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.activity import SubjectActivity
from mcp_ledger.eventstore.activity_sql import SqlSubjectActivity
from mcp_ledger.eventstore.ports import NewEvent
from mcp_ledger.eventstore.sql import SqlEventStore, create_store_engine

NOW = datetime(2026, 11, 25, tzinfo=UTC)


class Activity:
    def __init__(self, *found: SubjectActivity) -> None:
        self.found = found

    async def tenants(self) -> list[str]:
        return sorted({a.tenant for a in self.found})

    async def subjects(self, tenant: str) -> list[SubjectActivity]:
        return [a for a in self.found if a.tenant == tenant]


def _seen(tenant: str, subject: str, days_ago: int) -> SubjectActivity:
    return SubjectActivity(tenant, subject, NOW - timedelta(days=days_ago))


async def test_only_subjects_past_their_tenants_retention_are_due() -> None:
    source = Activity(
        _seen("acme", "old", 40),
        _seen("acme", "recent", 10),
        _seen("globex", "old", 400),
        _seen("initech", "x", 9),
    )
    policy = RetentionPolicy({"acme": 30, "*": 365})
    due = await due_subjects(source, policy, NOW)
    assert [(d.activity.tenant, d.activity.subject, d.retention_days) for d in due] == [
        ("acme", "old", 30),
        ("globex", "old", 365),
    ]
    assert await due_subjects(source, RetentionPolicy({"acme": 30}), NOW, tenant="globex") == []


async def test_an_erasure_id_is_stable_until_the_subject_is_active_again() -> None:
    policy = RetentionPolicy({"*": 30})
    [first] = await due_subjects(Activity(_seen("acme", "old", 40)), policy, NOW)
    [again] = await due_subjects(Activity(_seen("acme", "old", 40)), policy, NOW + timedelta(days=1))
    [later] = await due_subjects(Activity(_seen("acme", "old", 35)), policy, NOW)
    assert first.command.command_id == again.command.command_id != later.command.command_id
    assert (first.command.subject, first.command.requested_by) == ("old", "retention")


async def test_activity_is_the_newest_event_and_erased_subjects_are_not_listed(
    store: SqlEventStore, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    keys = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    activity = SqlSubjectActivity(create_store_engine(url), owns_engine=True)
    try:
        for subject in ("alice", "bob", "carol"):
            await keys.active_key("acme", subject)
        metadata = {"tenant": "acme", "subject": "alice"}
        await store.append("s", 0, [NewEvent("SessionClosed", {"reason": "x"}, metadata=metadata)])
        await keys.destroy("acme", "carol")
        found = {a.subject: a.last_active for a in await activity.subjects("acme")}
        [event] = await store.read_stream("s")
        assert set(found) == {"alice", "bob"}
        assert found["alice"] == event.recorded_at
        assert found["bob"] <= found["alice"]
        assert await activity.tenants() == ["acme"]
    finally:
        await activity.close()
        await keys.close()
