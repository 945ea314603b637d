"""`tools/list` answers kept as the bytes the SDK wrote, per audience, while still fresh.

With 1,000 registered tools the SDK spends tens of milliseconds per `tools/list` validating and
serialising the same answer again (issue 16). The answer is a function of who asks and how,
and of the registries it was built from; this cache keys it on all of that:

- the audience: tenant, subject and roles (role filtering), the session the request names
  and the request itself (every header the SDK's checks or the era may read, and the params:
  the era's `_meta`, the cursor), so nothing built for one caller, session, role set or
  protocol era is served to another;
- the freshness: the session if it is the caller's, its tool selection and the versions of
  the session's and the tenant's registries. Every registration, update, removal and
  approval bumps a registry's version, so a changed registry is a different freshness and
  the entry is rebuilt by the SDK.

One entry per audience (a rebuilt answer replaces the stale one), bounded in count and bytes.
Erasure is a barrier: the cache is one of the process's subject caches (compliance/barrier.py),
so an erasure completes only once every process dropped the subject's answers, and an answer
whose building began before a drop is not kept.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

MAX_ENTRIES = 512
MAX_BYTES = 64 * 1024 * 1024
"""About 200 answers of 1,000 tools (300 KB each); a miss only costs the SDK's own path."""


@dataclass(frozen=True, slots=True)
class ListingAudience:
    """Who asks, and how: everything of the request the answer may depend on."""

    tenant: str
    subject: str
    roles: tuple[str, ...]
    named_session: str | None
    headers: tuple[tuple[bytes, bytes], ...]
    params: str


@dataclass(frozen=True, slots=True)
class ListingFreshness:
    """What the answer was built from: stale as soon as any of it moves."""

    own_session: str | None
    selection: tuple[str, ...] | None
    registry_versions: tuple[int, int]


@dataclass(frozen=True, slots=True)
class CachedListing:
    """A successful answer as the SDK wrote it: its headers (no length) and its result."""

    headers: tuple[tuple[bytes, bytes], ...]
    result: bytes

    def body(self, request_id: int | str) -> bytes:
        """The answer to a request with this id, byte for byte what the SDK writes."""
        rid = json.dumps(request_id).encode()
        return b'{"jsonrpc":"2.0","id":' + rid + b',"result":' + self.result + b"}"


class ListingCache:
    """The freshest answer per audience, least recently used out first."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: OrderedDict[ListingAudience, tuple[ListingFreshness, CachedListing]] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._drops = 0
        self._caching = True

    def __len__(self) -> int:
        return len(self._entries)

    def holds(self, tenant: str, subject: str) -> bool:
        """Whether any answer built for this subject is kept."""
        return any((a.tenant, a.subject) == (tenant, subject) for a in self._entries)

    def get(self, audience: ListingAudience, freshness: ListingFreshness) -> CachedListing | None:
        """The answer for this audience if it was built from exactly this freshness."""
        entry = self._entries.get(audience)
        if entry is None or entry[0] != freshness:
            return None
        self._entries.move_to_end(audience)
        return entry[1]

    def generation(self) -> int:
        """Taken before an answer is built: `put` refuses it if subjects were dropped since."""
        return self._drops

    def put(
        self, audience: ListingAudience, freshness: ListingFreshness, listing: CachedListing, generation: int
    ) -> None:
        """Keep `listing` for this audience, replacing an older one; evict past the bounds."""
        if not self._caching or generation != self._drops or len(listing.result) > self._max_bytes:
            return
        self._drop(audience)
        self._entries[audience] = (freshness, listing)
        self._bytes += len(listing.result)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def forget_subject(self, tenant: str, subject: str) -> None:
        """Drop every answer built for this subject (the erasure barrier)."""
        self._drops += 1
        for audience in [a for a in self._entries if (a.tenant, a.subject) == (tenant, subject)]:
            self._drop(audience)

    def set_caching(self, enabled: bool) -> None:
        """Off (the barrier is unreachable): drop everything and keep nothing until on again."""
        self._caching = enabled
        if not enabled:
            self._drops += 1
            self._entries.clear()
            self._bytes = 0

    def _drop(self, audience: ListingAudience) -> None:
        entry = self._entries.pop(audience, None)
        if entry is not None:
            self._bytes -= len(entry[1].result)
