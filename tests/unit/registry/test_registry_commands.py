"""Registering through tool calls on the worker: roles, versions, redelivery, removal, replay,
and the watcher that tells API replicas which tool sets changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.registry.data_sources import DataSourcePolicy
from mcp_ledger.consumers.registry.tools import RegistryTools
from mcp_ledger.consumers.registry.writer import RegistryWriter
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.registry.registration import RegistrationPolicy
from mcp_ledger.domain.registry.tools import registry_tool_specs
from mcp_ledger.domain.streams import registry_stream
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry.projector import RegistryProjector
from mcp_ledger.projections.registry.watcher import RegistryWatcher

SPECS = {**builtin_catalog(), **registry_tool_specs()}


class Worker:
    def __init__(self, store: SqlEventStore) -> None:
        self.store = store
        self.views = MemoryRegistryViewStore()
        self.published: list[StoredEvent] = []
        self.catalog = ToolCatalog(SPECS, self.views)
        writer = RegistryWriter(
            store,
            RegistryProjector(self.views),
            self.publish,
            RegistrationPolicy(("api.example.com",)),
            SPECS,
        )
        tools = RegistryTools(writer, ("api.example.com",), DataSourcePolicy())
        self.handler = CommandHandler(store, SPECS, {**BUILTIN_RUNNERS, **tools.runners()}, self.publish)

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        self.published.extend(events)

    async def call(self, command: CallTool) -> StoredEvent:
        result = await self.handler.handle(command)
        return result.events[-1]


def weather(description: str = "Weather for a city.", name: str = "get_weather") -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        "binding": {"kind": "http", "method": "GET", "base_url": "https://api.example.com", "path": "/w"},
    }


def register(*tools: dict[str, Any], roles: tuple[str, ...] = ("admin",)) -> CallTool:
    return CallTool(
        tenant="acme",
        subject="alice",
        roles=roles,
        tool_name="register_tools",
        arguments={"tools": list(tools)},
    )


def register_in(session_id: str, *tools: dict[str, Any]) -> CallTool:
    arguments = {"tools": list(tools), "scope": "session"}
    return register().model_copy(update={"session_id": session_id, "arguments": arguments})


async def test_registering_without_the_registering_role_is_denied_and_registers_nothing(
    store: SqlEventStore,
) -> None:
    worker = Worker(store)
    last = await worker.call(register(weather(), roles=("operator",)))
    assert last.event_type == "ToolCallDenied"
    assert await store.read_stream(registry_stream("acme")) == []
    assert "get_weather" not in await worker.catalog.names("acme", None)


async def test_a_registration_is_visible_at_once_and_updates_bump_the_version(store: SqlEventStore) -> None:
    worker = Worker(store)
    first = await worker.call(register(weather()))
    same = await worker.call(register(weather()))
    changed = await worker.call(register(weather("Weather, now with wind.")))
    assert first.data["structured"] == {"scope": "tenant", "version": 1, "registered": ["get_weather"]}
    assert same.data["structured"]["registered"] == []
    assert changed.data["structured"] == {"scope": "tenant", "version": 2, "registered": ["get_weather"]}
    entry = await worker.catalog.find("acme", None, "get_weather")
    assert entry is not None
    assert entry.tool.version == 2
    assert entry.spec.description == "Weather, now with wind."
    types = [event.event_type for event in await store.read_stream(registry_stream("acme"))]
    assert types == ["ToolRegistered", "ToolUpdated"]


async def test_a_redelivered_registration_is_recorded_once(store: SqlEventStore) -> None:
    worker = Worker(store)
    command = register(weather())
    await worker.call(command)
    await worker.call(command)
    assert len(await store.read_stream(registry_stream("acme"))) == 1


async def test_a_refused_registration_fails_the_call_with_every_problem(store: SqlEventStore) -> None:
    worker = Worker(store)
    bad = weather(name="echo") | {
        "binding": {"kind": "http", "method": "GET", "base_url": "file:///etc/passwd"}
    }
    last = await worker.call(register(bad))
    assert last.event_type == "ToolFailed"
    assert last.data["error_code"] == "registration_refused"
    assert "built-in" in last.data["message"]
    assert "scheme 'file'" in last.data["message"]
    assert await store.read_stream(registry_stream("acme")) == []


async def test_removing_a_tool_hides_it_and_removing_an_unknown_one_fails(store: SqlEventStore) -> None:
    worker = Worker(store)
    await worker.call(register(weather()))
    remove = CallTool(tenant="acme", subject="alice", roles=("admin",), tool_name="remove_tool", arguments={})
    removed = await worker.call(remove.model_copy(update={"arguments": {"name": "get_weather"}}))
    again = await worker.call(
        remove.model_copy(update={"arguments": {"name": "get_weather"}, "command_id": "another-command-id"})
    )
    assert removed.data["structured"]["removed"] == ["get_weather"]
    assert again.data["error_code"] == "registration_refused"
    assert "get_weather" not in await worker.catalog.names("acme", None)


async def test_session_tools_are_seen_in_their_session_only_and_cannot_shadow_tenant_tools(
    store: SqlEventStore,
) -> None:
    worker = Worker(store)
    session_id = new_session_id()
    await worker.call(
        CallTool(tenant="acme", subject="alice", session_id=session_id, tool_name="session_open")
    )
    await worker.call(register(weather()))
    shadow = await worker.call(register_in(session_id, weather()))
    await worker.call(register_in(session_id, weather(name="my_weather")))
    assert shadow.data["error_code"] == "registration_refused"
    assert "my_weather" in await worker.catalog.names("acme", session_id)
    assert "my_weather" not in await worker.catalog.names("acme", None)
    assert "my_weather" not in await worker.catalog.names("acme", new_session_id())


async def test_a_rebuilt_registry_projection_equals_the_live_one(store: SqlEventStore) -> None:
    worker = Worker(store)
    await worker.call(register(weather(), weather(name="other")))
    await worker.call(register(weather("changed")))
    rebuilt = MemoryRegistryViewStore()
    await RegistryProjector(rebuilt).rebuild(store)
    live = await worker.views.get("acme", None)
    assert live is not None  # two views that are both missing would be equal, too
    assert (live.version, sorted(live.tools)) == (3, ["get_weather", "other"])
    assert live.tools["get_weather"].definition.description == "changed"
    assert await rebuilt.get("acme", None) == live


async def test_the_watcher_reports_the_scope_of_each_registry_change(store: SqlEventStore) -> None:
    worker = Worker(store)
    session_id = new_session_id()
    await worker.call(
        CallTool(tenant="acme", subject="alice", session_id=session_id, tool_name="session_open")
    )
    await worker.call(register(weather()))
    await worker.call(register_in(session_id, weather(name="mine")))
    replica_views = MemoryRegistryViewStore()  # another replica's store, fed only by the watcher
    changed: list[tuple[str, str | None]] = []

    async def on_tools_changed(tenant: str, session: str | None) -> None:
        changed.append((tenant, session))

    watcher = RegistryWatcher(
        RegistryProjector(replica_views),
        ToolCatalog(SPECS, replica_views),
        on_tools_changed,
        settle_timeout=1.0,
    )
    for event in worker.published:
        await watcher.on_event(event.event_type, json.dumps(event.to_json()).encode())
    assert changed == [("acme", None), ("acme", session_id)]
    assert "mine" in await ToolCatalog(SPECS, replica_views).names("acme", session_id)
