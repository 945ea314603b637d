"""The registry-writing tool tables dispatch the same way: every spec of the registry tools
and of the upstream-server tools has its runner and no runner lacks a spec, and both turn the
writer's refusals into the same recorded failures."""

from __future__ import annotations

import pytest

from mcp_ledger.consumers.registry.dispatch import refusals
from mcp_ledger.consumers.registry.tools import RegistryTools
from mcp_ledger.consumers.registry.writer import RegistryBusyError
from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.consumers.upstreams.tools import UpstreamTools
from mcp_ledger.domain.registry.openapi import OpenApiError
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.registry.tools import registry_tool_specs
from mcp_ledger.domain.upstreams.tools import (
    CATALOG_SPECS,
    UPSTREAM_READ_SPECS,
    UPSTREAM_SUBSCRIPTION_SPECS,
    upstream_tool_specs,
)


def test_every_registry_tool_spec_has_a_runner_and_every_runner_a_spec() -> None:
    assert set(RegistryTools.TOOLS) == set(registry_tool_specs())
    assert all(callable(getattr(RegistryTools, name)) for name in RegistryTools.TOOLS)


def test_every_upstream_server_tool_spec_has_a_runner_and_every_runner_a_spec() -> None:
    others = {spec.name for spec in (*UPSTREAM_READ_SPECS, *UPSTREAM_SUBSCRIPTION_SPECS, *CATALOG_SPECS)}
    assert set(UpstreamTools.TOOLS) == set(upstream_tool_specs()) - others
    assert all(callable(getattr(UpstreamTools, name)) for name in UpstreamTools.TOOLS)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RegistrationError(["x: clashes"]), "registration_refused"),
        (OpenApiError("not OpenAPI"), "registration_refused"),
        (RegistryBusyError("busy"), "registry_busy"),
    ],
)
def test_the_writer_s_refusals_become_the_tool_s_failure(error: Exception, code: str) -> None:
    with pytest.raises(ToolExecutionError) as raised, refusals():
        raise error
    assert raised.value.code == code
