"""CCPA opt-outs: the rule, and recording choices in the subject's privacy stream."""

from __future__ import annotations

import pytest

from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.mapping import to_domain
from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.compliance.privacy import (
    SharingRefused,
    SubjectOptedIn,
    SubjectOptedOut,
    may_share,
    opted_out,
    privacy_stream,
)
from mcp_ledger.domain.personal import DataRecipient
from mcp_ledger.eventstore.sql import SqlEventStore


def _call(subject: str = "alice", tool: str = "privacy_opt_out") -> CallTool:
    return CallTool(tenant="acme", subject=subject, tool_name=tool)


@pytest.mark.parametrize(
    ("is_opted_out", "recipient", "allowed"),
    [
        (False, "third_party", True),
        (True, "third_party", False),
        (True, "first_party", True),
        (True, "processor", True),
    ],
)
def test_only_third_parties_are_refused_and_only_for_opted_out_subjects(
    is_opted_out: bool, recipient: DataRecipient, allowed: bool
) -> None:
    assert may_share(is_opted_out, recipient) is allowed


def test_the_latest_choice_wins() -> None:
    out, back = (
        SubjectOptedOut(requested_by="a", via="tool", at=1),
        SubjectOptedIn(requested_by="a", via="tool", at=2),
    )
    assert (opted_out([]), opted_out([out]), opted_out([out, back]), opted_out([back, out])) == (
        False,
        True,
        False,
        True,
    )


async def test_an_opt_out_is_recorded_once_per_request_and_only_when_it_changes(store: SqlEventStore) -> None:
    choices = PrivacyChoices(store)
    request = _call()
    await choices.record(request, "alice", True, via="tool")
    await choices.record(request, "alice", True, via="tool")  # redelivered
    await choices.record(_call(), "alice", True, via="tool")  # asked again: nothing changes
    assert await choices.opted_out("acme", "alice")
    assert not await choices.opted_out("acme", "bob")
    await choices.record(_call(), "alice", False, via="tool")
    assert not await choices.opted_out("acme", "alice")
    stored = await store.read_stream(privacy_stream("acme", "alice"))
    assert [event.event_type for event in stored] == ["SubjectOptedOut", "SubjectOptedIn"]
    assert {event.metadata["subject"] for event in stored} == {"alice"}


async def test_an_admin_records_a_choice_on_the_subjects_stream_naming_themself(store: SqlEventStore) -> None:
    choices = PrivacyChoices(store)
    await choices.record(_call("dpo", "privacy_set_opt_out"), "alice", True, via="admin")
    stored = await store.read_stream(privacy_stream("acme", "alice"))
    event = to_domain(stored[0])
    assert isinstance(event, SubjectOptedOut)
    assert (event.requested_by, event.via, stored[0].metadata["subject"]) == ("dpo", "admin", "alice")


async def test_sharing_an_opted_out_subjects_data_with_a_third_party_is_refused_and_recorded(
    store: SqlEventStore,
) -> None:
    choices = PrivacyChoices(store)
    await choices.check_sharing(_call(), "third_party", "tool:weather")  # not opted out: allowed
    await choices.record(_call(), "alice", True, via="tool")
    await choices.check_sharing(_call(), "processor", "tool:crm")
    with pytest.raises(ToolExecutionError) as refused:
        await choices.check_sharing(_call(), "third_party", "tool:weather")
    assert refused.value.code == "opted_out"
    events = [to_domain(e) for e in await store.read_stream(privacy_stream("acme", "alice"))]
    assert [e.channel for e in events if isinstance(e, SharingRefused)] == ["tool:weather"]
