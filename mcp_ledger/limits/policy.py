"""Rate-limit policy: limits written "N/SECONDS", which limits apply to a caller, and the
generic cell rate algorithm (GCRA) both adapters implement.

Owns parsing and the arithmetic; deliberately holds no state and does no I/O (the Redis
adapter runs the same arithmetic in Lua, atomically, on the server's clock).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(?:s|sec|seconds)?\s*$")


class LimitFormatError(ValueError):
    """A limit is not written "N/SECONDS" with N >= 1 and SECONDS > 0."""


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` calls per `seconds`, in bursts of up to `count`."""

    count: int
    seconds: float

    @property
    def interval(self) -> float:
        """GCRA emission interval: one call's share of the period."""
        return self.seconds / self.count

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


def parse_limit(text: str) -> Limit | None:
    """The limit written as "N/SECONDS" ("100/60"); None for an empty string (no limit).

    Raises:
        LimitFormatError: anything else.
    """
    if not text.strip():
        return None
    match = _LIMIT.match(text)
    if match is None or int(match[1]) < 1 or float(match[2]) <= 0:
        raise LimitFormatError(f"a rate limit is written N/SECONDS, e.g. 100/60; not {text!r}")
    return Limit(int(match[1]), float(match[2]))


@dataclass(frozen=True, slots=True)
class Bucket:
    """One limit applied to one key; `scope` names it to the caller ("tenant" or "subject")."""

    key: str
    limit: Limit
    scope: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a call may go ahead; if not, which bucket refused and how long to wait."""

    allowed: bool
    retry_after: float = 0.0
    refused_by: Bucket | None = None


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """The limits of a deployment: per tenant (with per-tenant overrides) and per subject."""

    tenant: Limit | None = None
    subject: Limit | None = None
    tenant_overrides: Mapping[str, Limit | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, tenant: str, subject: str, overrides: Mapping[str, str]) -> RatePolicy:
        """The policy from settings strings.

        Raises:
            LimitFormatError: a limit is malformed (the message names it).
        """
        return cls(
            tenant=parse_limit(tenant),
            subject=parse_limit(subject),
            tenant_overrides={name: parse_limit(text) for name, text in overrides.items()},
        )

    @property
    def active(self) -> bool:
        """Whether any call could ever be limited."""
        return self.tenant is not None or self.subject is not None or any(self.tenant_overrides.values())

    def buckets(self, tenant: str, subject: str) -> list[Bucket]:
        """The buckets one call of this caller draws from."""
        tenant_limit = self.tenant_overrides.get(tenant, self.tenant)
        found = []
        if tenant_limit is not None:
            found.append(Bucket(f"tenant:{tenant}", tenant_limit, "tenant"))
        if self.subject is not None:
            found.append(Bucket(f"subject:{tenant}:{subject}", self.subject, "subject"))
        return found


def gcra_wait(tat: float, now: float, limit: Limit) -> float:
    """Seconds until a call may be admitted given the bucket's theoretical arrival time
    `tat` (0 when it may go now). Admitting it moves the tat to max(tat, now) + interval."""
    return max(0.0, max(tat, now) + limit.interval - limit.seconds - now)
