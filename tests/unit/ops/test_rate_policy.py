"""Rate-limit policy: how limits are written and which buckets a caller draws from."""

from __future__ import annotations

import pytest

from mcp_ledger.limits.policy import Limit, LimitFormatError, RatePolicy, parse_limit


@pytest.mark.parametrize(
    ("text", "limit"),
    [("100/60", Limit(100, 60)), (" 5 / 1.5 ", Limit(5, 1.5)), ("10/60s", Limit(10, 60)), ("", None)],
)
def test_limits_are_written_count_slash_seconds(text: str, limit: Limit | None) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["100", "0/60", "10/0", "ten/60", "-1/60", "10/60m"])
def test_a_malformed_limit_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(LimitFormatError, match="N/SECONDS"):
        parse_limit(text)


def test_a_caller_draws_from_its_tenant_and_its_own_subject_bucket() -> None:
    policy = RatePolicy.parse("1000/60", "10/60", {})
    buckets = policy.buckets("acme", "alice")
    assert [(b.key, b.limit, b.scope) for b in buckets] == [
        ("tenant:acme", Limit(1000, 60), "tenant"),
        ("subject:acme:alice", Limit(10, 60), "subject"),
    ]


def test_a_tenant_override_replaces_the_default_and_an_empty_one_lifts_it() -> None:
    policy = RatePolicy.parse("1000/60", "", {"free": "10/60", "vip": ""})
    assert [b.limit for b in policy.buckets("free", "a")] == [Limit(10, 60)]
    assert policy.buckets("vip", "a") == []
    assert [b.limit for b in policy.buckets("acme", "a")] == [Limit(1000, 60)]


def test_a_policy_without_limits_is_inactive() -> None:
    assert not RatePolicy.parse("", "", {}).active
    assert RatePolicy.parse("", "", {"free": "1/1"}).active
