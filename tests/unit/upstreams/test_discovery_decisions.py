"""Discovery's decisions, pure: pinning holds changed and new tools back until approval,
pinning off exposes at once, gone tools are removed, a new prefix renames, clashes are
refused naming what they clash with, and definition hashes ignore key order."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.registry.aggregate import ToolRegistry
from mcp_ledger.domain.registry.events import ToolRegistered, ToolRemoved, ToolUpdated
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.upstreams.aggregate import Upstreams, decide_discovery
from mcp_ledger.domain.upstreams.events import (
    UpstreamCatalogRecorded,
    UpstreamDefinition,
    UpstreamServerRegistered,
    UpstreamToolChanged,
)
from mcp_ledger.domain.upstreams.model import UpstreamServer, definition_hash


def _tool(name: str, description: str = "does things") -> UpstreamDefinition:
    return UpstreamDefinition.of(
        name, {"name": name, "description": description, "inputSchema": {"type": "object"}}
    )


def _catalog(*tools: UpstreamDefinition) -> UpstreamCatalogRecorded:
    return UpstreamCatalogRecorded(server="up", protocol_version="2025-11-25", tools=list(tools))


class Scope:
    """One registry stream, decided against and applied like the writer does."""

    def __init__(self, **server: Any) -> None:
        self.registry = ToolRegistry(stream_id="tenant:t:registry")
        self.register(**server)

    def register(self, **server: Any) -> None:
        self.registry.apply(
            UpstreamServerRegistered(server=UpstreamServer(name="up", url="http://u/mcp", **server))
        )

    def discover(
        self, *tools: UpstreamDefinition, approve: bool = False, reserved: frozenset[str] = frozenset()
    ) -> list[DomainEvent]:
        upstreams = Upstreams.replay(self.registry.history)
        events = decide_discovery(
            self.registry,
            upstreams,
            _catalog(*tools),
            reserved,
            builtins=frozenset({"echo"}),
            approve=approve,
        )
        for event in events:
            self.registry.apply(event)
        return events

    def description(self, name: str) -> str:
        return self.registry.tools[name].definition.description


def test_the_first_discovery_exposes_every_tool() -> None:
    scope = Scope()
    events = scope.discover(_tool("a"), _tool("b"))
    assert [type(e) for e in events] == [UpstreamCatalogRecorded, ToolRegistered, ToolRegistered]
    assert set(scope.registry.tools) == {"a", "b"}


def test_a_changed_pinned_definition_is_recorded_and_held_back_until_approved() -> None:
    scope = Scope()
    scope.discover(_tool("a", "honest"))
    held = scope.discover(_tool("a", "evil"))
    assert [type(e) for e in held] == [UpstreamCatalogRecorded, UpstreamToolChanged]
    assert scope.description("a") == "honest"
    assert scope.discover(_tool("a", "evil")) == []  # seen already: nothing new to record
    approved = scope.discover(_tool("a", "evil"), approve=True)
    assert any(isinstance(e, ToolUpdated) for e in approved)
    assert scope.description("a") == "evil"


def test_a_new_tool_of_a_pinned_server_waits_for_approval() -> None:
    scope = Scope()
    scope.discover(_tool("a"))
    events = scope.discover(_tool("a"), _tool("b"))
    changed = [e for e in events if isinstance(e, UpstreamToolChanged)]
    assert [(e.tool, e.previous_hash) for e in changed] == [("b", None)]
    assert "b" not in scope.registry.tools


def test_with_pinning_off_changes_are_exposed_at_once() -> None:
    scope = Scope(pinning=False)
    scope.discover(_tool("a", "one"))
    scope.discover(_tool("a", "two"))
    assert scope.description("a") == "two"


def test_a_tool_gone_upstream_is_removed_at_once() -> None:
    scope = Scope()
    scope.discover(_tool("a"), _tool("b"))
    events = scope.discover(_tool("a"))
    assert [e.name for e in events if isinstance(e, ToolRemoved)] == ["b"]


def test_a_new_prefix_renames_the_exposed_tools() -> None:
    scope = Scope()
    scope.discover(_tool("a"))
    scope.register(prefix="gh")
    scope.discover(_tool("a"), approve=True)
    assert set(scope.registry.tools) == {"gh_a"}


def test_deny_wins_over_allow() -> None:
    scope = Scope(allow=("a*",), deny=("ab",))
    scope.discover(_tool("aa"), _tool("ab"), _tool("b"))
    assert set(scope.registry.tools) == {"aa"}


@pytest.mark.parametrize(
    ("name", "reserved", "expected"),
    [
        ("echo", frozenset({"echo"}), "clashes with the built-in tool 'echo'"),
        ("shared", frozenset({"shared"}), "clashes with the tenant-wide tool 'shared'"),
    ],
)
def test_a_clash_is_refused_saying_with_what(name: str, reserved: frozenset[str], expected: str) -> None:
    scope = Scope()
    with pytest.raises(RegistrationError, match=expected):
        scope.discover(_tool(name), reserved=reserved)
    assert scope.registry.tools == {}


def test_definition_hashes_ignore_key_order_and_see_every_change() -> None:
    one = {"name": "a", "inputSchema": {"type": "object", "properties": {}}}
    same = {"inputSchema": {"properties": {}, "type": "object"}, "name": "a"}
    assert definition_hash(one) == definition_hash(same)
    assert definition_hash(one) != definition_hash({**one, "description": "x"})
