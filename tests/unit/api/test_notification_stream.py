"""What a session's notification stream sends once: replayed and live copies of the same
event, several notifications per event, and nothing at or before Last-Event-ID."""

from __future__ import annotations

from mcp_ledger.mcp_api.transport.notifications import notifications_for
from mcp_ledger.mcp_api.transport.session_stream import _Seen


def _event(position: int, event_type: str = "ToolSucceeded") -> dict[str, object]:
    return {
        "position": position,
        "stream_id": "tenant:acme:session:s1",
        "event_type": event_type,
        "data": {"tool_name": "echo", "content": {"$sealed": "x"}},
    }


def test_an_event_can_mean_a_state_update_and_a_log_line_without_its_content() -> None:
    methods = [n["method"] for n in notifications_for(_event(5))]
    assert methods == ["notifications/resources/updated", "notifications/message"]
    assert "$sealed" not in str(notifications_for(_event(5)))


def test_each_notification_of_a_position_goes_out_once() -> None:
    seen = _Seen(after=0)
    first, second = notifications_for(_event(5))
    assert seen.first_time(5, first)
    assert seen.first_time(5, second)
    assert not seen.first_time(5, first)  # the live copy of a replayed one
    assert not seen.first_time(4, first)
    assert seen.first_time(6, first)


def test_nothing_at_or_before_last_event_id_is_sent_again() -> None:
    seen = _Seen(after=7)
    assert not seen.first_time(7, notifications_for(_event(7))[0])
    assert seen.first_time(8, notifications_for(_event(8))[0])


def test_notifications_not_from_the_store_always_go_out() -> None:
    seen = _Seen(after=9)
    changed = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    assert seen.first_time(0, changed)
    assert seen.first_time(0, changed)
