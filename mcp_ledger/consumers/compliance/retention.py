"""Retention of subjects' data by crypto-shredding: who is due, and as which erasure.

Events are append-only and hash-chained, so retention never deletes them: a subject inactive
for longer than their tenant's retention is erased through the ordinary erasure path (keys
destroyed, projections and blobs purged, a PII-free record kept), which leaves their events
as unreadable ciphertext. The erasure id is derived from the tenant, subject and last
activity, so a run that stopped halfway resumes the same erasures when run again, and a
subject active again later gets a new one. Does not erase (the erasure handler does) nor
read the store (eventstore/activity.py does).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.eventstore.activity import SubjectActivity, SubjectActivitySource

ALL_TENANTS = "*"
REQUESTED_BY = "retention"
_NAMESPACE = uuid.UUID("6f1c2d0e-9a57-4d1b-8a0b-2f6c3b7e5a10")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days of inactivity after which a tenant's subjects are erased; "*" applies to every
    tenant not named. A tenant without a policy keeps data until erased on request."""

    days: Mapping[str, int]

    def days_for(self, tenant: str) -> int | None:
        return self.days.get(tenant, self.days.get(ALL_TENANTS))


@dataclass(frozen=True, slots=True)
class Due:
    """A subject whose retention ran out, and the erasure that ends it."""

    activity: SubjectActivity
    retention_days: int

    @property
    def command(self) -> EraseSubject:
        seed = f"{self.activity.tenant}\0{self.activity.subject}\0{self.activity.last_active.isoformat()}"
        return EraseSubject(
            command_id=uuid.uuid5(_NAMESPACE, seed).hex,
            tenant=self.activity.tenant,
            subject=self.activity.subject,
            requested_by=REQUESTED_BY,
        )


async def due_subjects(
    source: SubjectActivitySource, policy: RetentionPolicy, now: datetime, *, tenant: str | None = None
) -> list[Due]:
    """Subjects (of one tenant, or of all) inactive for longer than their tenant's retention."""
    tenants = [tenant] if tenant is not None else await source.tenants()
    found = []
    for name in tenants:
        days = policy.days_for(name)
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        found += [Due(a, days) for a in await source.subjects(name) if a.last_active < cutoff]
    return found
