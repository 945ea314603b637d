"""The subject-activity port: when each subject was last active (for retention).

Retention needs "subjects whose last event is older than N days". A subject counts only while
they hold a live data key: without one nothing of theirs can be read any more (erased, or
they never had personal data), so an erased subject is never found again and retention runs
are idempotent. Last activity is their newest event, or their key's creation when they have
none. The SQL adapter is activity_sql.py. Does not decide who is due
(consumers/retention.py) nor erase anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SubjectActivity:
    tenant: str
    subject: str
    last_active: datetime


class SubjectActivitySource(Protocol):
    async def tenants(self) -> list[str]:
        """Tenants with at least one subject holding a live key."""
        ...

    async def subjects(self, tenant: str) -> list[SubjectActivity]:
        """Every subject of the tenant holding a live key, with their last activity."""
        ...
