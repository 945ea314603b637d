"""One contract for every RegistryViewStore: memory in unit tests, Redis in integration."""

from __future__ import annotations

import pytest

from mcp_ledger.domain.registry.model import RegisteredTool, ToolDefinition
from mcp_ledger.projections.registry.ports import RegistryViewStore
from mcp_ledger.projections.registry.view import RegistryView


def definition(name: str) -> ToolDefinition:
    return ToolDefinition.model_validate(
        {
            "name": name,
            "description": "d",
            "input_schema": {"type": "object"},
            "binding": {"kind": "http", "method": "GET", "base_url": "https://api.example.com"},
        }
    )


def view(version: int, *names: str, tenant: str = "acme", session_id: str | None = None) -> RegistryView:
    tools = {name: RegisteredTool(definition=definition(name), version=1) for name in names}
    return RegistryView(tenant=tenant, session_id=session_id, version=version, tools=tools)


class RegistryViewStoreContract:
    """Subclasses provide a fresh, empty `registry` fixture."""

    @pytest.fixture
    def registry(self) -> RegistryViewStore:
        raise NotImplementedError

    async def test_a_stored_view_is_read_back_with_its_tools(self, registry: RegistryViewStore) -> None:
        assert await registry.compare_and_set(view(1, "a"), 0)
        assert await registry.get("acme", None) == view(1, "a")

    async def test_nothing_registered_reads_as_no_view(self, registry: RegistryViewStore) -> None:
        assert await registry.get("acme", None) is None
        assert await registry.get("acme", "s1") is None

    async def test_a_stale_version_loses_the_compare_and_set(self, registry: RegistryViewStore) -> None:
        assert await registry.compare_and_set(view(1, "a"), 0)
        assert not await registry.compare_and_set(view(2, "a", "b"), 0)
        assert await registry.compare_and_set(view(2, "a", "b"), 1)
        assert await registry.get("acme", None) == view(2, "a", "b")

    async def test_tenant_and_session_scopes_are_apart(self, registry: RegistryViewStore) -> None:
        await registry.compare_and_set(view(1, "t"), 0)
        await registry.compare_and_set(view(1, "s", session_id="s1"), 0)
        assert await registry.get("acme", "s1") == view(1, "s", session_id="s1")
        assert await registry.get("acme", "s2") is None
        assert await registry.get("globex", None) is None

    async def test_clear_removes_every_registry(self, registry: RegistryViewStore) -> None:
        await registry.compare_and_set(view(1, "t"), 0)
        await registry.compare_and_set(view(1, "s", session_id="s1"), 0)
        await registry.clear()
        assert await registry.get("acme", None) is None
        assert await registry.get("acme", "s1") is None

    async def test_the_version_alone_follows_the_stored_view_in_its_scope(
        self, registry: RegistryViewStore
    ) -> None:
        assert await registry.version("acme", None) == 0
        await registry.compare_and_set(view(1, "t"), 0)
        await registry.compare_and_set(view(2, "t", "u"), 1)
        await registry.compare_and_set(view(1, "s", session_id="s1"), 0)
        assert await registry.version("acme", None) == 2
        assert await registry.version("acme", "s1") == 1
        assert await registry.version("acme", "s2") == 0
        assert await registry.version("globex", None) == 0
