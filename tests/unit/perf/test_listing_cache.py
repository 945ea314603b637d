"""The tools/list cache's own rules: one answer per audience, fresh only for the freshness it
was built from, bounded, and a barrier for erasure (mcp_api/tools/listing_cache.py)."""

from __future__ import annotations

import json

from mcp_ledger.mcp_api.tools.listing_cache import (
    CachedListing,
    ListingAudience,
    ListingCache,
    ListingFreshness,
)
from mcp_ledger.mcp_api.tools.listing_shortcut import listing_request

FRESH = ListingFreshness(None, None, (0, 1))


def _audience(subject: str = "alice", tenant: str = "acme") -> ListingAudience:
    return ListingAudience(
        tenant, subject, ("operator",), None, ((b"mcp-protocol-version", b"2026-07-28"),), "null"
    )


def _listing(size: int = 10) -> CachedListing:
    return CachedListing(((b"content-type", b"application/json"),), b'{"tools":[' + b" " * size + b"]}")


def test_an_answer_is_served_only_for_the_freshness_it_was_built_from() -> None:
    cache = ListingCache()
    cache.put(_audience(), FRESH, _listing(), cache.generation())
    assert cache.get(_audience(), FRESH) == _listing()
    assert cache.get(_audience(), ListingFreshness(None, None, (0, 2))) is None
    assert cache.get(_audience(), ListingFreshness(None, ("a*",), (0, 1))) is None
    assert cache.get(_audience("bob"), FRESH) is None


def test_a_rebuilt_answer_replaces_the_stale_one() -> None:
    cache = ListingCache()
    cache.put(_audience(), FRESH, _listing(1), cache.generation())
    cache.put(_audience(), ListingFreshness(None, None, (0, 2)), _listing(2), cache.generation())
    assert len(cache) == 1
    assert cache.get(_audience(), FRESH) is None


def test_the_cache_is_bounded_in_entries_and_bytes_least_recent_out_first() -> None:
    cache = ListingCache(max_entries=2, max_bytes=100)
    for subject in ("a", "b", "c"):
        cache.put(_audience(subject), FRESH, _listing(), cache.generation())
    assert [cache.get(_audience(s), FRESH) is not None for s in "abc"] == [False, True, True]
    cache.put(_audience("d"), FRESH, _listing(80), cache.generation())  # 92 bytes: b and c go
    assert len(cache) == 1
    cache.put(_audience("e"), FRESH, _listing(90), cache.generation())  # over the bound alone
    assert not cache.holds("acme", "e")


def test_an_erased_subjects_answers_go_and_one_built_before_the_drop_is_not_kept() -> None:
    cache = ListingCache()
    cache.put(_audience("alice"), FRESH, _listing(), cache.generation())
    cache.put(_audience("bob"), FRESH, _listing(), cache.generation())
    cache.put(_audience("alice", "globex"), FRESH, _listing(), cache.generation())
    started = cache.generation()
    cache.forget_subject("acme", "alice")
    assert not cache.holds("acme", "alice")
    assert cache.holds("acme", "bob")
    assert cache.holds("globex", "alice")
    cache.put(_audience("alice"), FRESH, _listing(), started)
    assert not cache.holds("acme", "alice")


def test_with_caching_off_nothing_is_kept() -> None:
    cache = ListingCache()
    cache.put(_audience(), FRESH, _listing(), cache.generation())
    cache.set_caching(False)
    assert len(cache) == 0
    cache.put(_audience(), FRESH, _listing(), cache.generation())
    assert len(cache) == 0
    cache.set_caching(True)
    cache.put(_audience(), FRESH, _listing(), cache.generation())
    assert len(cache) == 1


def test_the_answer_carries_the_requests_id_as_json() -> None:
    assert json.loads(_listing().body('a"b')) == {"jsonrpc": "2.0", "id": 'a"b', "result": {"tools": []}}
    assert json.loads(_listing().body(7))["id"] == 7


def test_only_a_plain_tools_list_is_taken_for_the_cache() -> None:
    plain = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"cursor": "x", "_meta": {"k": 1}}}
    assert listing_request(json.dumps(plain).encode()) is not None
    for other in (
        {**plain, "method": "tools/call"},
        {**plain, "id": True},
        {**plain, "id": None},
        {**plain, "params": {"requestState": "s"}},
        {**plain, "extra": 1},
        [plain],
    ):
        assert listing_request(json.dumps(other).encode()) is None
    assert listing_request(b"{not json") is None
