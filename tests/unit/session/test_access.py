"""Role checks per tool, and what a denied call leaves behind."""

from __future__ import annotations

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import EVENT_TYPES
from mcp_ledger.domain.personal import personal_fields
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog
from mcp_ledger.eventstore.sql import SqlEventStore


def test_a_higher_rung_satisfies_a_minimum_role() -> None:
    assert access_problem(["admin"], "data-analyst", ()) is None
    assert access_problem(["data-analyst"], "data-analyst", ()) is None


def test_a_lower_rung_or_an_unknown_role_does_not() -> None:
    assert access_problem(["viewer"], "data-analyst", ()) is not None
    assert access_problem(["root"], "viewer", ()) is not None
    assert access_problem([], "viewer", ()) is not None


def test_allowed_roles_need_one_of_them_as_well() -> None:
    assert access_problem(["billing"], None, {"billing", "finance"}) is None
    assert access_problem(["admin"], "viewer", {"billing"}) is not None


def test_a_minimum_role_not_on_the_ladder_admits_nobody() -> None:
    assert access_problem(["admin"], "superuser", ()) is not None


def test_tool_arguments_and_outputs_are_marked_personal() -> None:
    assert personal_fields(EVENT_TYPES["ToolCalled"]) == {"arguments"}
    assert personal_fields(EVENT_TYPES["ToolSucceeded"]) == {"content", "structured"}
    assert personal_fields(EVENT_TYPES["SessionNoteWritten"]) == {"key", "value"}


async def test_a_denied_call_is_recorded_and_never_reaches_the_tool(store: SqlEventStore) -> None:
    ran: list[str] = []

    async def guarded(invocation: object) -> object:
        ran.append("guarded")
        raise AssertionError("a denied tool ran")

    catalog = {
        **builtin_catalog(),
        "guarded": ToolSpec(
            name="guarded", title="G", description="d", input_schema={"type": "object"}, minimum_role="admin"
        ),
    }

    async def published(events: object) -> None:
        return None

    handler = CommandHandler(store, catalog, {**BUILTIN_RUNNERS, "guarded": guarded}, published)  # type: ignore[dict-item]
    command = CallTool(
        tenant="acme", subject="bob", roles=("viewer",), tool_name="guarded", arguments={"secret": "s3"}
    )
    outcome = await handler.handle(command)
    assert ran == []
    assert [e.event_type for e in outcome.events] == ["ToolCallDenied"]
    denied = outcome.events[0].data
    assert denied["roles"] == ["viewer"]
    assert "s3" not in str(denied)
